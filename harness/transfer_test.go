package harness

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ehealth-dk/fut-conformance/refserver"
)

// servingFiles passes every request to h but the output files' (GET …/Binary/…), whose answer from h is
// handed to serve to send as it likes.
func servingFiles(h http.Handler, serve func(w http.ResponseWriter, r *http.Request, file *httptest.ResponseRecorder)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/Binary/") {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			writeRewritten(w, rec.Header(), rec.Code, rec.Body.Bytes())
			return
		}
		serve(w, r, rec)
	})
}

// cutMidLine sends the file's header and its body up to the middle of its second line as a chunked body,
// then closes the connection without the last chunk: the transfer is cut short, as by a connection reset.
func cutMidLine(encode func([]byte) []byte) func(http.ResponseWriter, *http.Request, *httptest.ResponseRecorder) {
	return func(w http.ResponseWriter, _ *http.Request, file *httptest.ResponseRecorder) {
		body := file.Body.Bytes()
		first := bytes.IndexByte(body, '\n') + 1
		cut := body[:first+(bytes.IndexByte(body[first:], '\n'))/2]
		encoding := ""
		if encode != nil {
			whole := encode(body)
			cut, encoding = whole[:len(whole)*2/3], "Content-Encoding: gzip\r\n"
		}
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n%sTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", file.Header().Get("Content-Type"), encoding, len(cut), cut)
		_ = buf.Flush()
	}
}

func gzipped(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return out.Bytes()
}

// An output file whose transfer is cut short (a chunked body without its last chunk, as a connection reset
// leaves it), plain or gzip-encoded, is a transport error of the run: charged to no requirement, and not
// passed. Its cut last line is not judged as the server's invalid JSON.
func TestAnOutputFileCutShortInTransferIsATransportErrorNotTheServers(t *testing.T) {
	for name, encode := range map[string]func([]byte) []byte{"identity": nil, "gzip": gzipped} {
		t.Run(name, func(t *testing.T) {
			h := servingFiles(refserverHandler(t, refserver.Config{}), cutMidLine(encode))
			res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@EXP-OUTPUT"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Passed || len(res.Failures) != 1 {
				t.Fatalf("a file cut short must not pass: passed %v, failures %+v\n%s", res.Passed, res.Failures, out)
			}
			f := res.Failures[0]
			if !f.Transport || f.NonConformant || f.Requirement != "" {
				t.Fatalf("want a transport error charged to no requirement, got %+v\n%s", f, out)
			}
			if strings.Contains(f.Message, "invalid JSON") {
				t.Errorf("the cut line must not be judged as the server's JSON: %s", f.Message)
			}
		})
	}
}

// A server may compress an output file when the request allows it (Content-Encoding: gzip): the file is
// judged as it decodes and passes. A gzip stream the server sent whole but broken (its checksum wrong) is the
// server's: EXP-OUTPUT fails naming the content coding. A coding the request did not accept (it asks for gzip
// alone, in its transcript) is RFC 9110 §12.5.3's SHOULD, a warning and no failure: deflate (the zlib format)
// is decoded and judged, a broken one failing as a broken gzip does; br cannot be decoded with the standard
// library, so the files are not checked (the scenario skipped), neither failed nor passed. Each coding the
// request did not accept was failed.
func TestContentCodedOutputFilesAreJudgedDecoded(t *testing.T) {
	serve := func(mangle func([]byte) []byte, coding string, encode func([]byte) []byte) func(http.ResponseWriter, *http.Request, *httptest.ResponseRecorder) {
		return func(w http.ResponseWriter, r *http.Request, file *httptest.ResponseRecorder) {
			if r.Header.Get("Accept-Encoding") != "gzip" {
				w.Header().Set("Content-Type", file.Header().Get("Content-Type"))
				_, _ = w.Write(file.Body.Bytes())
				return
			}
			w.Header().Set("Content-Type", file.Header().Get("Content-Type"))
			w.Header().Set("Content-Encoding", coding)
			_, _ = w.Write(mangle(encode(file.Body.Bytes())))
		}
	}
	whole := func(b []byte) []byte { return b }
	badChecksum := func(b []byte) []byte {
		b = bytes.Clone(b)
		b[len(b)-8] ^= 0xff // the CRC-32 of the gzip trailer
		return b
	}
	badAdler := func(b []byte) []byte {
		b = bytes.Clone(b)
		b[len(b)-1] ^= 0xff // the Adler-32 of the zlib trailer
		return b
	}
	for _, c := range []struct {
		name, coding   string
		encode, mangle func([]byte) []byte
		fails          string // a failure of EXP-OUTPUT containing it; "" none
		warns          bool   // a warning naming the coding
		skipped        bool   // the files not checked, the scenario skipped
	}{
		{"gzip", "gzip", gzipped, whole, "", false, false},
		{"gzip with a bad checksum", "gzip", gzipped, badChecksum, "Content-Encoding gzip", false, false},
		{"deflate not accepted", "deflate", zlibbed, whole, "", true, false},
		{"deflate with a bad checksum", "deflate", zlibbed, badAdler, "a whole deflate (zlib) stream", true, false},
		{"br not accepted", "br", whole, whole, "", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := servingFiles(refserverHandler(t, refserver.Config{}), serve(c.mangle, c.coding, c.encode))
			res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@EXP-OUTPUT"})
			if err != nil {
				t.Fatal(err)
			}
			if c.fails != "" && (len(res.Failures) == 0 || !strings.Contains(res.Failures[0].Message, "> Accept-Encoding: gzip")) {
				t.Errorf("the transcript does not show the request's Accept-Encoding:\n%s", out)
			}
			switch got := failedRequirements(res); {
			case c.fails == "" && len(got) > 0:
				t.Fatalf("want no failure, got %+v\n%s", res.Failures, out)
			case c.fails != "" && (len(got) != 1 || got[0] != "EXP-OUTPUT" || !res.Failures[0].NonConformant || !strings.Contains(res.Failures[0].Message, c.fails)):
				t.Fatalf("want EXP-OUTPUT failed naming %s, got %+v\n%s", c.fails, res.Failures, out)
			}
			warned := false
			for _, w := range res.Findings.Warnings() {
				warned = warned || w.Requirement == "EXP-OUTPUT" && strings.Contains(w.Message, fmt.Sprintf("Content-Encoding %q, a content coding the request did not accept", c.coding))
			}
			if warned != c.warns || len(res.Findings.Warnings()) > 1 {
				t.Errorf("want a warning naming %s: %v, got %+v", c.coding, c.warns, res.Findings.Warnings())
			}
			skipped := len(res.Findings.Skips()) == 1 && len(res.Findings.NotChecked()) > 0 && strings.Contains(res.Findings.NotChecked()[0].Message, "cannot decode")
			if skipped != c.skipped {
				t.Errorf("want the files not checked and the scenario skipped: %v, got skips %+v, not checked %+v", c.skipped, res.Findings.Skips(), res.Findings.NotChecked())
			}
			if c.fails == "" && !c.skipped && !res.Passed {
				t.Errorf("want a pass:\n%s", out)
			}
		})
	}
}

func zlibbed(b []byte) []byte {
	var out bytes.Buffer
	zw := zlib.NewWriter(&out)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return out.Bytes()
}

// A manifest may list no output file and error files only (BDA2: a partial success is a 200 with error
// files; output SHOULD be [] when there is no data). The error files are still judged: an error file that
// holds no OperationOutcome fails EXP-OUTPUT naming it; a valid one leaves EXP-OUTPUT skipped, not passed,
// since no output file was there to check.
func TestAManifestOfErrorFilesOnlyIsJudged(t *testing.T) {
	outcome := `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing","diagnostics":"Patient/7 could not be read"}]}` + "\n"
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+ndjson")
		if strings.HasSuffix(r.URL.Path, "/bad") {
			_, _ = w.Write([]byte(`{"resourceType":"Patient","id":"p1"}` + "\n"))
			return
		}
		_, _ = w.Write([]byte(outcome))
	}))
	t.Cleanup(files.Close)
	for _, file := range []string{"good", "bad"} {
		t.Run(file, func(t *testing.T) {
			h := rewriting(refserverHandler(t, refserver.Config{}), func(_ *http.Request, status int, body []byte) []byte {
				var m map[string]any
				if status != http.StatusOK || json.Unmarshal(body, &m) != nil || m["output"] == nil || m["transactionTime"] == nil {
					return body
				}
				m["output"] = []any{}
				m["error"] = []any{map[string]any{"type": "OperationOutcome", "url": files.URL + "/errors/" + file}}
				b, _ := json.Marshal(m)
				return b
			})
			res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@EXP-OUTPUT", TrustedOrigins: []string{files.URL}})
			if err != nil {
				t.Fatal(err)
			}
			if file == "bad" {
				if got := failedRequirements(res); len(got) != 1 || got[0] != "EXP-OUTPUT" || !strings.Contains(res.Failures[0].Message, files.URL+"/errors/bad") {
					t.Fatalf("an error file of Patients must fail EXP-OUTPUT naming it, got %+v\n%s", res.Failures, out)
				}
				return
			}
			// its one scenario skipped: the run checked nothing, and failed nothing
			if skips := res.Findings.Skips(); !res.NothingChecked || len(skips) != 1 || !strings.Contains(skips[0].Message, "no output file") {
				t.Fatalf("want EXP-OUTPUT skipped for want of output files, got passed %v, skips %+v\n%s", res.Passed, skips, out)
			}
		})
	}
}

// A file server that throttles is waited out like every other request of the scenarios: each file answers
// 429 to its first request, with a Retry-After or without one (BDA2: SHOULD send one), and EXP-OUTPUT passes.
func TestAThrottlingFileServerIsWaitedOut(t *testing.T) {
	for _, retryAfter := range []string{"1", ""} {
		t.Run("Retry-After "+retryAfter, func(t *testing.T) {
			var mu sync.Mutex
			seen := map[string]bool{}
			var throttled atomic.Int64
			h := servingFiles(refserverHandler(t, refserver.Config{}), func(w http.ResponseWriter, r *http.Request, file *httptest.ResponseRecorder) {
				mu.Lock()
				first := !seen[r.URL.Path]
				seen[r.URL.Path] = true
				mu.Unlock()
				if first {
					throttled.Add(1)
					if retryAfter != "" {
						w.Header().Set("Retry-After", retryAfter)
					}
					w.WriteHeader(http.StatusTooManyRequests)
					return
				}
				w.Header().Set("Content-Type", file.Header().Get("Content-Type"))
				_, _ = w.Write(file.Body.Bytes())
			})
			res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@EXP-OUTPUT"})
			if err != nil || !res.Passed || len(res.Findings.Skips()) > 0 {
				t.Fatalf("passed %v, skips %v, err %v\n%s", res.Passed, res.Findings.Skips(), err, out)
			}
			if throttled.Load() == 0 {
				t.Fatal("no file was throttled: the test proves nothing")
			}
		})
	}
}

// Output files served as S3- or Azure-backed servers serve them: the file URL answers an authorized request
// with a 307 to a pre-signed URL on another origin, which refuses a request that also carries a bearer token
// (S3: "Only one auth mechanism allowed"). The redirect is followed without the token, and every output file
// scenario passes; requests without a token, or with user B's, are still refused by the server itself.
func TestOutputFilesRedirectedToAPresignedStorePass(t *testing.T) {
	for _, signature := range []string{"abc", "expired"} {
		t.Run(signature, func(t *testing.T) { redirectedToStore(t, signature) })
	}
}

// redirectedToStore runs the file scenarios against files redirected to a store; a signature "expired" is
// refused there (403), and EXP-OUTPUT fails showing where the redirect led.
func redirectedToStore(t *testing.T, signature string) {
	var mu sync.Mutex
	stored := map[string][]byte{}
	var served, withToken atomic.Int64
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			withToken.Add(1)
			http.Error(w, "Only one auth mechanism allowed", http.StatusBadRequest)
			return
		}
		mu.Lock()
		body, ok := stored[r.URL.Path]
		mu.Unlock()
		if !ok || r.URL.Query().Get("X-Amz-Signature") != "abc" {
			http.Error(w, "AccessDenied", http.StatusForbidden)
			return
		}
		served.Add(1)
		w.Header().Set("Content-Type", "application/fhir+ndjson")
		_, _ = w.Write(body)
	}))
	t.Cleanup(store.Close)
	h := servingFiles(refserverHandler(t, refserver.Config{}), func(w http.ResponseWriter, r *http.Request, file *httptest.ResponseRecorder) {
		key := "/bucket" + r.URL.Path
		mu.Lock()
		stored[key] = file.Body.Bytes()
		mu.Unlock()
		http.Redirect(w, r, store.URL+key+"?X-Amz-Signature="+signature, http.StatusTemporaryRedirect)
	})
	if signature == "expired" {
		res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, Tags: "@EXP-OUTPUT"})
		if err != nil {
			t.Fatal(err)
		}
		if got := failedRequirements(res); len(got) != 1 || got[0] != "EXP-OUTPUT" || !strings.Contains(res.Failures[0].Message, "redirected: answered by "+store.URL+"/bucket/") {
			t.Fatalf("want EXP-OUTPUT failed, its transcript naming the store that refused, got %+v\n%s", res.Failures, out)
		}
		if strings.Contains(res.Failures[0].Message, "X-Amz-Signature") || strings.Contains(out, "X-Amz-Signature") {
			t.Fatalf("the pre-signed URL's signature is in the reports:\n%s", out)
		}
		return
	}
	res, out, err := runAgainst(t, h, Config{Token: refserver.DemoTokenA, TokenB: refserver.DemoTokenB, Tags: "@EXP-OUTPUT,@EXP-OUTPUT-ACCEPT,@EXP-OUTPUT-TOKEN,@EXP-CROSS-USER"})
	if err != nil || !res.Passed || len(res.Findings.Skips()) > 0 || len(res.Findings.NotChecked()) > 0 {
		t.Fatalf("passed %v, skips %v, not checked %v, err %v\n%s", res.Passed, res.Findings.Skips(), res.Findings.NotChecked(), err, out)
	}
	if served.Load() == 0 || withToken.Load() > 0 {
		t.Fatalf("the store served %d files and got the token %d times: want files served, never the token", served.Load(), withToken.Load())
	}
}
