package report

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
)

// Message builds the report mail: multipart/alternative with a text and an
// HTML part, both quoted-printable UTF-8, with Date and a fresh Message-ID
// whose domain is the sender's.
func Message(r Report, from string, to []string, now time.Time) ([]byte, error) {
	fromAddr, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("from address %q: %w", from, ErrInvalid)
	}
	var rcpts []string
	for _, t := range to {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return nil, fmt.Errorf("to address %q: %w", t, ErrInvalid)
		}
		rcpts = append(rcpts, a.String())
	}
	if len(rcpts) == 0 {
		return nil, fmt.Errorf("no recipient: %w", ErrInvalid)
	}
	var text, html bytes.Buffer
	if err := Text(&text, r); err != nil {
		return nil, err
	}
	if err := HTML(&html, r); err != nil {
		return nil, err
	}

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, part := range []struct {
		typ  string
		data []byte
	}{{"text/plain; charset=utf-8", text.Bytes()}, {"text/html; charset=utf-8", html.Bytes()}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.typ},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qp := quotedprintable.NewWriter(pw)
		if _, err := qp.Write(part.data); err != nil {
			return nil, err
		}
		if err := qp.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}

	var id [12]byte
	rand.Read(id[:])
	domain := fromAddr.Address[strings.LastIndexByte(fromAddr.Address, '@')+1:]
	var msg bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&msg, "%s: %s\r\n", k, v) }
	header("From", fromAddr.String())
	header("To", strings.Join(rcpts, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", Subject(r)))
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", "<cairn-report-"+r.Date+"-"+hex.EncodeToString(id[:])+"@"+domain+">")
	header("MIME-Version", "1.0")
	header("Content-Type", `multipart/alternative; boundary="`+mw.Boundary()+`"`)
	header("Auto-Submitted", "auto-generated")
	msg.WriteString("\r\n")
	msg.Write(body.Bytes())
	return msg.Bytes(), nil
}
