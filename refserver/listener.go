package refserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
)

// OutcomeListener wraps a plain-TCP listener so that the answers net/http writes by itself, before any
// handler runs (431 when the request headers exceed http.Server.MaxHeaderBytes, 400 for a malformed request,
// 501 for an unknown transfer encoding), are OperationOutcomes like every other error, instead of text/plain.
// It must sit below TLS only if the bytes it sees are plain: use it for http, not under a tls.Listener.
func OutcomeListener(ln net.Listener) net.Listener { return outcomeListener{ln} }

type outcomeListener struct{ net.Listener }

func (l outcomeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return outcomeConn{c}, nil
}

type outcomeConn struct{ net.Conn }

// rawErrorRE matches net/http's own error answer, written in one Write: a status line, exactly these two
// headers, and a plain-text body. A handler's answer always carries a Date header, so it never matches.
var rawErrorRE = regexp.MustCompile(`(?s)^HTTP/1\.1 ([1-5][0-9]{2}) ([^\r\n]*)\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n(.*)$`)

func (c outcomeConn) Write(p []byte) (int, error) {
	m := rawErrorRE.FindSubmatch(p)
	if m == nil {
		return c.Conn.Write(p)
	}
	code, _ := strconv.Atoi(string(m[1]))
	issue := codeInvalid
	switch code {
	case http.StatusRequestHeaderFieldsTooLarge:
		issue = codeTooCostly
	case http.StatusNotImplemented:
		issue = codeNotSupported
	}
	body, err := json.Marshal(operationOutcome{ResourceType: "OperationOutcome",
		Issue: []ooIssue{{Severity: sevError, Code: issue, Diagnostics: string(m[3])}}})
	if err != nil {
		return c.Conn.Write(p)
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		code, http.StatusText(code), contentTypeFHIRJSON, len(body))
	out.Write(body)
	if _, err := c.Conn.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}
