package report

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/smtp"
	"net/url"
	"strings"
	"time"
)

// SMTP delivers reports by mail. The connection is upgraded with STARTTLS
// whenever the server offers it; AUTH PLAIN is used only over TLS, so a
// password is never sent in the clear (the send fails instead).
type SMTP struct {
	// Addr is host:port of the mail server.
	Addr string
	// ImplicitTLS dials TLS at once (smtps, port 465) instead of STARTTLS.
	ImplicitTLS bool
	From        string
	To          []string
	// Username and Password authenticate with AUTH PLAIN when Password is
	// set. The password never appears in logs or errors.
	Username string
	Password string
	// TLS configures the TLS client; nil uses the system roots and the
	// host of Addr as server name.
	TLS *tls.Config
	// Hello is the name given in EHLO; empty means "localhost".
	Hello string
	// Timeout bounds one delivery; 0 means a minute.
	Timeout time.Duration
}

// ParseSMTPURL reads smtp://[user@]host[:port]?from=ADDR&to=ADDR[,ADDR...]
// (port 25 by default) or smtps://... (implicit TLS, port 465). A password
// in the URL is refused: it would end up in process listings.
func ParseSMTPURL(raw string) (SMTP, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return SMTP{}, fmt.Errorf("smtp url: cannot parse: %w", ErrInvalid)
	}
	var s SMTP
	port := "25"
	switch u.Scheme {
	case "smtp":
	case "smtps":
		s.ImplicitTLS, port = true, "465"
	default:
		return SMTP{}, fmt.Errorf("smtp url: scheme %q: want smtp or smtps: %w", u.Scheme, ErrInvalid)
	}
	if u.Hostname() == "" {
		return SMTP{}, fmt.Errorf("smtp url: no host: %w", ErrInvalid)
	}
	if u.Port() != "" {
		port = u.Port()
	}
	s.Addr = net.JoinHostPort(u.Hostname(), port)
	if u.User != nil {
		if _, set := u.User.Password(); set {
			return SMTP{}, fmt.Errorf("smtp url: a password in the URL is refused; use a password file: %w", ErrInvalid)
		}
		s.Username = u.User.Username()
	}
	if u.Path != "" && u.Path != "/" {
		return SMTP{}, fmt.Errorf("smtp url: unexpected path: %w", ErrInvalid)
	}
	q := u.Query()
	for k := range q {
		if k != "from" && k != "to" {
			return SMTP{}, fmt.Errorf("smtp url: unknown parameter %q (accepted: from, to): %w", k, ErrInvalid)
		}
	}
	s.From = q.Get("from")
	if _, err := mail.ParseAddress(s.From); err != nil {
		return SMTP{}, fmt.Errorf("smtp url: from=%q is not a mail address: %w", s.From, ErrInvalid)
	}
	for _, to := range strings.Split(q.Get("to"), ",") {
		if to = strings.TrimSpace(to); to == "" {
			continue
		}
		if _, err := mail.ParseAddress(to); err != nil {
			return SMTP{}, fmt.Errorf("smtp url: to=%q is not a mail address: %w", to, ErrInvalid)
		}
		s.To = append(s.To, to)
	}
	if len(s.To) == 0 {
		return SMTP{}, fmt.Errorf("smtp url: no recipient (to=): %w", ErrInvalid)
	}
	return s, nil
}

// Name says where reports go, for logs; it holds no secret.
func (s SMTP) Name() string { return "smtp " + s.Addr }

// Deliver mails r, made at now.
func (s SMTP) Deliver(ctx context.Context, r Report, now time.Time) error {
	msg, err := Message(r, s.From, s.To, now)
	if err != nil {
		return err
	}
	if err := s.send(ctx, msg); err != nil {
		return fmt.Errorf("mail report to %s: %w", s.Addr, err)
	}
	return nil
}

func (s SMTP) send(ctx context.Context, msg []byte) error {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return fmt.Errorf("address: %w", ErrInvalid)
	}
	tlsCfg := s.TLS.Clone()
	if tlsCfg == nil {
		tlsCfg = &tls.Config{}
	}
	if tlsCfg.ServerName == "" {
		tlsCfg.ServerName = host
	}
	d := &net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	// Closing the connection when ctx ends unblocks any SMTP exchange.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	secure := false
	if s.ImplicitTLS {
		tc := tls.Client(conn, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return err
		}
		conn, secure = tc, true
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return err
	}
	defer c.Close()
	hello := s.Hello
	if hello == "" {
		hello = "localhost"
	}
	if err := c.Hello(hello); err != nil {
		return err
	}
	if !secure {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsCfg); err != nil {
				return fmt.Errorf("starttls: %w", err)
			}
			secure = true
		}
	}
	if s.Password != "" {
		if !secure {
			return errors.New("the server offers no STARTTLS: refusing to send the password in the clear")
		}
		if ok, _ := c.Extension("AUTH"); !ok {
			return errors.New("the server offers no AUTH but a password is configured")
		}
		if err := c.Auth(plainAuth{user: s.Username, pass: s.Password}); err != nil {
			return fmt.Errorf("auth as %q: %w", s.Username, err)
		}
	}
	if err := c.Mail(addrOf(s.From)); err != nil {
		return err
	}
	for _, to := range s.To {
		if err := c.Rcpt(addrOf(to)); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func addrOf(s string) string {
	a, err := mail.ParseAddress(s)
	if err != nil {
		return s
	}
	return a.Address
}

// plainAuth is AUTH PLAIN (RFC 4616). smtp.PlainAuth would also send over
// an unencrypted connection to localhost; this one relies on send having
// checked TLS first.
type plainAuth struct{ user, pass string }

func (a plainAuth) Start(*smtp.ServerInfo) (string, []byte, error) {
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.pass), nil
}

func (a plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, errors.New("unexpected server challenge")
	}
	return nil, nil
}
