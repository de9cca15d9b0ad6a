package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ehealth-dk/fut-conformance/check"
	"github.com/ehealth-dk/fut-conformance/refserver"
	"github.com/ehealth-dk/fut-conformance/steps"
)

// child is one measured side of a figure, in a process of its own; it prints its measured as JSON.
func child(args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("no mode")
	}
	if path := os.Getenv("BENCHSCALE_CPUPROFILE"); path != "" { // where a child spends its time, one file per mode
		f, err := os.Create(path + "." + args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var (
		m     measured
		err   error
		start = time.Now()
	)
	switch mode, a := args[0], args[1:]; mode {
	case "raw": // URL accept
		m.Bytes, err = fetch(a[0], a[1], discard)
	case "validate": // URL accept type fhirLines count
		m, err = validate(a[0], a[1], a[2], a[3], a[4])
	case "files-raw": // manifest parallel
		m, err = files(false, a[0], a[1], "")
	case "files-suite": // manifest parallel fhirLines
		m, err = files(true, a[0], a[1], a[2])
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		return err
	}
	m.Seconds = time.Since(start).Seconds()
	return json.NewEncoder(os.Stdout).Encode(m)
}

var token = "Bearer " + refserver.DemoTokenA

// plainClient keeps as many idle connections as the harness does (steps.IdleConnsFor), so that the plain
// side reuses its connections as the suite's does; files sets it for its parallelism.
var plainClient = newPlainClient(1)

func newPlainClient(parallel int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = steps.IdleConnsFor(parallel)
	return &http.Client{Transport: tr}
}

func fetch(url, accept string, read func(http.Header, io.Reader) error) (int64, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("Authorization", token)
	resp, err := plainClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	c := &counter{r: resp.Body}
	err = read(resp.Header, c)
	return c.n, err
}

type counter struct {
	r io.Reader
	n int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// validate reads one file as the harness does (check.ReadOutputStream with the harness's defaults, or
// every line strictly), its header as the server sent it.
func validate(url, accept, typ, fhirLines, count string) (measured, error) {
	var m measured
	n, err := strconv.ParseInt(count, 10, 64)
	if err != nil {
		return m, err
	}
	item := check.ManifestItem{Type: typ, URL: url, Count: &n}
	// the one file is its type's only one: it has the type's budget of lines, as the download step gives it
	typeLines := new(atomic.Int64)
	typeLines.Store(steps.TypeLines)
	fc := check.FileCheck{TypeLines: typeLines, StrictSample: sample()}
	if fhirLines == "all" {
		fc = check.FileCheck{StrictLines: check.AllLines}
	}
	m.Bytes, err = fetch(url, accept, func(h http.Header, r io.Reader) error {
		f, err := check.ReadOutputStream(item, &check.Exchange{Method: http.MethodGet, URL: url, Status: 200, Header: h}, r, fc)
		m.Lines, m.Strict = f.Resources, f.Strict
		return err
	})
	return m, err
}

// sample is the parent's -fhir-sample (steps.DefaultFHIRSample when it set none).
func sample() float64 {
	if p, err := strconv.ParseFloat(os.Getenv("BENCHSCALE_FHIR_SAMPLE"), 64); err == nil && p > 0 {
		return p
	}
	return steps.DefaultFHIRSample
}

func discard(_ http.Header, r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

// files downloads every file of the manifest on parallel connections: by a plain client to a discard, or
// by the suite (steps.DownloadOutputFiles, which judges each file while it streams), with no strict
// decoding when fhirLines is "none".
func files(suite bool, path, parallel, fhirLines string) (measured, error) {
	var m measured
	raw, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
	var man check.Manifest
	if err := json.Unmarshal(raw, &man); err != nil {
		return m, err
	}
	par, err := strconv.Atoi(parallel)
	if err != nil {
		return m, err
	}
	plainClient = newPlainClient(par)
	if suite {
		lines := steps.DefaultFHIRLines
		if fhirLines == "none" {
			lines = steps.NoFHIRLines
		}
		if len(man.Output) == 0 {
			return m, fmt.Errorf("manifest %s lists no output file", path)
		}
		base := steps.Origin(man.Output[0].URL) + "/fhir" // the reference server's, so the token goes there
		t := steps.Target{FHIRLines: lines, FHIRSample: sample(), ExportBaseURL: base, ReportBaseURL: base, ParallelDownloads: par, MaxFiles: len(man.Output),
			Credentials: steps.StaticTokens(map[string]string{"A": refserver.DemoTokenA})}
		got, err := steps.DownloadOutputFiles(context.Background(), t, &man, "A")
		for _, f := range got {
			m.Lines += f.Resources
			m.Strict += f.Strict
		}
		return m, err
	}
	var (
		wg    sync.WaitGroup
		bytes atomic.Int64
		first error
		once  sync.Once
		slots = make(chan struct{}, par)
	)
	for _, it := range man.Output {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			n, err := fetch(it.URL, acceptNDJSON, discard)
			bytes.Add(n)
			if err != nil {
				once.Do(func() { first = err })
			}
		}()
	}
	wg.Wait()
	m.Bytes = bytes.Load()
	return m, first
}
