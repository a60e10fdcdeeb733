package report

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"
)

// smtpServer is a small SMTP server on loopback that records what it gets:
// EHLO, optional STARTTLS, AUTH PLAIN (only after TLS), MAIL, RCPT, DATA,
// RSET, NOOP, QUIT.
type smtpServer struct {
	ln  net.Listener
	tls *tls.Config // nil: no STARTTLS offered
	// implicit: the listener speaks TLS from the start (smtps).
	implicit bool
	user     string
	pass     string

	mu   sync.Mutex
	msgs []received
}

type received struct {
	from   string
	to     []string
	data   string
	tls    bool
	authed string
}

func startSMTP(t *testing.T, tlsCfg *tls.Config, user, pass string) *smtpServer {
	return listenSMTP(t, tlsCfg, user, pass, false)
}

func listenSMTP(t *testing.T, tlsCfg *tls.Config, user, pass string, implicit bool) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if implicit {
		ln = tls.NewListener(ln, tlsCfg)
	}
	s := &smtpServer{ln: ln, tls: tlsCfg, user: user, pass: pass, implicit: implicit}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *smtpServer) received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

func (s *smtpServer) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	rd := bufio.NewReader(c)
	reply := func(lines ...string) {
		for i, l := range lines {
			sep := " "
			if i < len(lines)-1 {
				sep = "-"
			}
			io.WriteString(c, l[:3]+sep+l[4:]+"\r\n")
		}
	}
	reply("220 test ESMTP")
	cur := received{tls: s.implicit}
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			ext := []string{"250 test greets you", "250 8BITMIME"}
			if s.tls != nil && !cur.tls {
				ext = append(ext, "250 STARTTLS")
			}
			if cur.tls && s.pass != "" {
				ext = append(ext, "250 AUTH PLAIN")
			}
			reply(ext...)
		case "STARTTLS":
			if s.tls == nil || cur.tls {
				reply("502 not now")
				continue
			}
			reply("220 go ahead")
			tc := tls.Server(c, s.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			c, rd, cur = tc, bufio.NewReader(tc), received{tls: true}
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			if !cur.tls || mech != "PLAIN" {
				reply("504 no")
				continue
			}
			b, err := base64.StdEncoding.DecodeString(resp)
			parts := strings.Split(string(b), "\x00")
			if err != nil || len(parts) != 3 || parts[1] != s.user || parts[2] != s.pass {
				reply("535 authentication failed")
				continue
			}
			cur.authed = parts[1]
			reply("235 ok")
		case "MAIL":
			if s.pass != "" && cur.authed == "" {
				reply("530 authentication required")
				continue
			}
			cur.from, _, _ = strings.Cut(strings.TrimPrefix(arg, "FROM:"), " ")
			reply("250 ok")
		case "RCPT":
			cur.to = append(cur.to, strings.TrimPrefix(arg, "TO:"))
			reply("250 ok")
		case "DATA":
			reply("354 end with .")
			var b strings.Builder
			for {
				l, err := rd.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(strings.TrimPrefix(l, "."))
			}
			cur.data = b.String()
			s.mu.Lock()
			s.msgs = append(s.msgs, cur)
			s.mu.Unlock()
			cur = received{tls: cur.tls, authed: cur.authed}
			reply("250 queued")
		case "RSET", "NOOP":
			reply("250 ok")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("500 unknown command")
		}
	}
}

// testCert returns a server config for 127.0.0.1 and a client config that
// trusts it.
func testCert(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test smtp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool}
}

// parseMail checks the message is multipart/alternative with a text and an
// HTML part and returns them decoded.
func parseMail(t *testing.T, data string) (*mail.Message, string, string) {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(data))
	if err != nil {
		t.Fatalf("message does not parse: %v", err)
	}
	for _, h := range []string{"From", "To", "Subject", "Date", "Message-Id", "Mime-Version"} {
		if m.Header.Get(h) == "" {
			t.Errorf("header %s missing", h)
		}
	}
	if _, err := m.Header.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type %q (%v), want multipart/alternative", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var text, html string
	for {
		p, err := mr.NextPart() // decodes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("part: %v", err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		switch ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct {
		case "text/plain":
			text = string(b)
		case "text/html":
			html = string(b)
		default:
			t.Errorf("unexpected part %s", ct)
		}
	}
	if text == "" || html == "" {
		t.Fatalf("want a text and an HTML part; text %d bytes, html %d bytes", len(text), len(html))
	}
	return m, text, html
}

func TestSMTPDeliversOverSTARTTLSWithAuth(t *testing.T) {
	srvTLS, cliTLS := testCert(t)
	const password = "s3cret-pa55"
	srv := startSMTP(t, srvTLS, "backup", password)
	s, err := ParseSMTPURL("smtp://backup@" + srv.ln.Addr().String() + "?from=Cairn+<cairn@example.org>&to=ops@example.org,admin@example.org")
	if err != nil {
		t.Fatal(err)
	}
	s.Password, s.TLS = password, cliTLS
	r := sampleReport(t)
	if err := s.Deliver(context.Background(), r, r.Generated); err != nil {
		t.Fatal(err)
	}
	got := srv.received()
	if len(got) != 1 {
		t.Fatalf("server got %d messages", len(got))
	}
	g := got[0]
	if !g.tls || g.authed != "backup" {
		t.Errorf("tls=%v authed=%q, want STARTTLS and AUTH as backup", g.tls, g.authed)
	}
	if g.from != "<cairn@example.org>" || strings.Join(g.to, " ") != "<ops@example.org> <admin@example.org>" {
		t.Errorf("envelope from %s to %v", g.from, g.to)
	}
	m, text, html := parseMail(t, g.data)
	subj, _ := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if !strings.Contains(subj, "2026-03-08") || !strings.Contains(subj, "2 failed") {
		t.Errorf("subject %q", subj)
	}
	for _, want := range []string{"vc/web01", "vc/db01", "vc/old01", "disk read error"} {
		if !strings.Contains(text, want) || !strings.Contains(html, want) {
			t.Errorf("mail parts lack %q", want)
		}
	}
	if strings.Contains(html, "<script>") {
		t.Error("HTML part carries an unescaped <script>")
	}
	if strings.Contains(g.data, password) {
		t.Error("message contains the password")
	}
}

func TestSMTPImplicitTLS(t *testing.T) {
	srvTLS, cliTLS := testCert(t)
	srv := listenSMTP(t, srvTLS, "backup", "pw-over-tls", true)
	s, err := ParseSMTPURL("smtps://backup@" + srv.ln.Addr().String() + "?from=cairn@example.org&to=ops@example.org")
	if err != nil {
		t.Fatal(err)
	}
	s.Password, s.TLS = "pw-over-tls", cliTLS
	r := sampleReport(t)
	if err := s.Deliver(context.Background(), r, r.Generated); err != nil {
		t.Fatal(err)
	}
	if got := srv.received(); len(got) != 1 || !got[0].tls || got[0].authed != "backup" {
		t.Fatalf("got %d messages", len(got))
	}
	// A client that does not trust the server's certificate sends nothing.
	s.TLS = nil
	if err := s.Deliver(context.Background(), r, r.Generated); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate: %v", err)
	}
}

func TestSMTPPlainServerWithoutPassword(t *testing.T) {
	srv := startSMTP(t, nil, "", "")
	s, err := ParseSMTPURL("smtp://" + srv.ln.Addr().String() + "?from=cairn@example.org&to=ops@example.org")
	if err != nil {
		t.Fatal(err)
	}
	r := sampleReport(t)
	if err := s.Deliver(context.Background(), r, r.Generated); err != nil {
		t.Fatal(err)
	}
	if got := srv.received(); len(got) != 1 || got[0].tls {
		t.Fatalf("got %d messages (tls %v), want one in the clear", len(got), len(got) > 0 && got[0].tls)
	}
}

func TestSMTPRefusesPasswordWithoutTLS(t *testing.T) {
	srv := startSMTP(t, nil, "backup", "pw")
	const password = "never-in-errors"
	s, err := ParseSMTPURL("smtp://backup@" + srv.ln.Addr().String() + "?from=cairn@example.org&to=ops@example.org")
	if err != nil {
		t.Fatal(err)
	}
	s.Password = password
	r := sampleReport(t)
	err = s.Deliver(context.Background(), r, r.Generated)
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("err = %v, want a refusal to send the password without TLS", err)
	}
	if strings.Contains(err.Error(), password) {
		t.Error("error contains the password")
	}
	if len(srv.received()) != 0 {
		t.Error("message delivered")
	}
}

func TestSMTPWrongPasswordNotInError(t *testing.T) {
	srvTLS, cliTLS := testCert(t)
	srv := startSMTP(t, srvTLS, "backup", "right")
	s, err := ParseSMTPURL("smtp://backup@" + srv.ln.Addr().String() + "?from=cairn@example.org&to=ops@example.org")
	if err != nil {
		t.Fatal(err)
	}
	const password = "wrong-horse-battery"
	s.Password, s.TLS = password, cliTLS
	r := sampleReport(t)
	err = s.Deliver(context.Background(), r, r.Generated)
	if err == nil || !strings.Contains(err.Error(), "535") {
		t.Fatalf("err = %v, want the server's 535", err)
	}
	if strings.Contains(err.Error(), password) {
		t.Error("error contains the password")
	}
}

func TestParseSMTPURL(t *testing.T) {
	s, err := ParseSMTPURL("smtps://u@mail.example.org?from=a@example.org&to=b@example.org")
	if err != nil || s.Addr != "mail.example.org:465" || !s.ImplicitTLS || s.Username != "u" {
		t.Errorf("smtps: %+v, %v", s, err)
	}
	for _, bad := range []string{
		"http://h?from=a@b&to=c@d",
		"smtp://?from=a@b&to=c@d",
		"smtp://u:pw@h?from=a@b&to=c@d",
		"smtp://h?from=nope&to=c@d",
		"smtp://h?from=a@b",
		"smtp://h?from=a@b&to=c@d&cc=e@f",
		"smtp://h/x?from=a@b&to=c@d",
	} {
		if _, err := ParseSMTPURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), "pw") {
			t.Errorf("%q: error shows the password: %v", bad, err)
		}
	}
}

func FuzzParseSMTPURL(f *testing.F) {
	f.Add("smtp://u@127.0.0.1:2525?from=a@example.org&to=b@example.org,c@example.org")
	f.Add("smtps://mail?from=Cairn <a@b>&to=x@y")
	f.Add("smtp://u:secret@h?from=a@b&to=c@d")
	f.Fuzz(func(t *testing.T, raw string) {
		s, err := ParseSMTPURL(raw)
		if err != nil {
			return
		}
		if s.Addr == "" || s.From == "" || len(s.To) == 0 || s.Password != "" {
			t.Fatalf("accepted %q as %+v", raw, s)
		}
		if _, err := Message(Report{Objects: []Object{}}, s.From, s.To, time.Unix(0, 0)); err != nil {
			t.Fatalf("accepted addresses a message refuses: %v", err)
		}
	})
}
