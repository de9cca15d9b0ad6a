package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseLimitOptions(t *testing.T) {
	o, err := parseOptions([]string{"-max-conns", "7", "-read-timeout", "3s"}, envMap(map[string]string{"MAX_JOBS_PER_USER": "5", "MAX_JOB_REQUEST_BYTES": "1024"}), io.Discard)
	if err != nil {
		t.Fatalf("parseOptions: %v", err)
	}
	if o.conns.maxConns != 7 || o.conns.readTimeout != 3*time.Second || o.cfg.MaxJobsPerUser != 5 || o.cfg.MaxJobRequestBytes != 1024 {
		t.Fatalf("limits: got conns %+v, jobs %d, bytes %d", o.conns, o.cfg.MaxJobsPerUser, o.cfg.MaxJobRequestBytes)
	}
	for _, args := range [][]string{{"-max-conns", "0"}, {"-read-timeout", "-1s"}, {"-read-timeout", "soon"}, {"-max-jobs-per-user", "x"}, {"-max-job-request-bytes", "-5"}} {
		if _, err := parseOptions(args, envMap(nil), io.Discard); !errors.As(err, new(*usageError)) {
			t.Errorf("%v: expected a usage error, got %v", args, err)
		}
	}
}

// A slow body is cut off at the read timeout, connections beyond -max-conns wait until one closes, and
// headers beyond net/http's own limit get an OperationOutcome.
func TestRunTimesOutSlowBodiesAndLimitsConnections(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := lineWriter{lines: make(chan string, 16)}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-read-timeout", "300ms", "-max-conns", "2"}, envMap(nil), out)
	}()
	base, _ := strings.CutPrefix(awaitFirstLine(t, out, done), "refserver listening on ")
	root := strings.TrimSuffix(base, "/fhir")
	addr := strings.TrimPrefix(root, "http://")

	// Two connections that send headers, then never the promised body: both slots taken.
	var slow []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /fhir/$export HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer demo-token-a\r\nPrefer: respond-async\r\nContent-Type: application/fhir+json\r\nContent-Length: 1000\r\n\r\n{", addr)
		slow = append(slow, c)
	}
	// A third client is served once the read timeout has closed a slow one.
	got := make(chan error, 1)
	go func() {
		client := &http.Client{Timeout: 20 * time.Second}
		resp, err := client.Get(root + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		got <- err
	}()
	for i, c := range slow {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second)) // a hang guard, far beyond the 300ms timeout
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("slow connection %d: expected the server to close it after its read timeout, got %v", i, err)
		}
	}
	if err := <-got; err != nil {
		t.Fatalf("third client: %v", err)
	}

	// Headers over net/http's limit: 431 with an OperationOutcome, not Go's text/plain.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go fmt.Fprintf(c, "GET /fhir/metadata HTTP/1.1\r\nHost: %s\r\nX-Big: %s\r\n\r\n", addr, strings.Repeat("a", maxHeaderBytes+8192))
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("oversized headers: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/fhir+json") ||
		!strings.Contains(string(body), `"resourceType":"OperationOutcome"`) {
		t.Fatalf("oversized headers: expected 431 with an OperationOutcome, got %d %q %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}
