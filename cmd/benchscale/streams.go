package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/ehealth-dk/fut-conformance/check"
	"github.com/ehealth-dk/fut-conformance/refserver"
	"github.com/ehealth-dk/fut-conformance/steps"
)

// The streaming rows: output files validated while they download, beside a plain download of the same bytes
// in the same run. The harness's side runs as a child process (this program again, -child), so that its
// peak resident memory (Maxrss of the child) is its own; the plain side is a child too. These rows are
// CPU-bound: they take cpuBound, one at a time, while the wall-time rows (waits.go) run beside them.
var (
	bigSize    = flag.String("size", "1GiB", "size of the one big output file (streaming rows)")
	nFiles     = flag.Int("files", 1000, "number of small output files")
	fileSize   = flag.String("file-size", "1MB", "size of each small output file")
	strictSize = flag.String("strict-size", "32MiB", "size of the file decoded strictly, every line")
	parallel   = flag.Int("parallel", 8, "connections for the small files (PARALLEL_DOWNLOADS)")
	rounds     = flag.Int("rounds", 3, "rounds of each side of a streaming ratio, alternating; the fastest of each side counts")
	fhirSample = flag.Float64("fhir-sample", steps.DefaultFHIRSample, "FHIR_SAMPLE of the harness's side: the chance that a line is decoded strictly")
)

var cpuBound sync.Mutex

const memoryGoal = 150 << 20

const (
	acceptNDJSON = "application/fhir+ndjson"
	acceptBinary = "application/fhir+json"
)

func init() {
	row := func(name, goal string, run func(b *bench) (float64, string, error)) figure {
		return figure{name: name, goal: goal, run: func(context.Context) (float64, string, error) {
			cpuBound.Lock()
			defer cpuBound.Unlock()
			return run(theBench())
		}}
	}
	figures = append(figures,
		row("validation throughput of one big NDJSON output file / raw download of it", "≥ 0.5",
			func(b *bench) (float64, string, error) { return b.throughput("big", acceptNDJSON, "") }),
		row("peak resident memory of the harness validating the big NDJSON file / 150 MiB", "≤ 1",
			func(b *bench) (float64, string, error) { return b.memory("big", acceptNDJSON) }),
		row("throughput with every line decoded strictly as FHIR R4 / raw download (the strict file)", "reported; ≥ 0.25 to be the default",
			func(b *bench) (float64, string, error) { return b.throughput("strict", acceptNDJSON, "all") }),
		row("validation throughput of the big file as a FUT Binary (base64) / raw download of that Binary", "≥ 0.4",
			func(b *bench) (float64, string, error) { return b.throughput("big", acceptBinary, "") }),
		row("peak resident memory of the harness validating the big Binary / 150 MiB", "≤ 1",
			func(b *bench) (float64, string, error) { return b.memory("big", acceptBinary) }),
		row("small files: the suite's download-and-validate time / the same GETs by a plain client, same parallelism", "≤ 1.5",
			func(b *bench) (float64, string, error) { return b.manyFiles("") }),
		// what the strict sample costs the row above, measured in the same run: for the owner's choice of
		// its rate
		row("small files without strict decoding (FHIR_LINES=none): the same ratio", "reported",
			func(b *bench) (float64, string, error) { return b.manyFiles("none") }),
	)
}

// bench is what the streaming rows share: the reference servers, the harness's measured runs.
type bench struct {
	self        string
	servers     map[string]*served // by export: "big", "small", "strict"
	validations map[string]measured
	raws        map[string]measured // the plain downloads measured beside each validation
}

var (
	benchOnce sync.Once
	shared    *bench
)

func theBench() *bench {
	benchOnce.Do(func() {
		self, _ := os.Executable()
		shared = &bench{self: self, servers: map[string]*served{}, validations: map[string]measured{}, raws: map[string]measured{}}
	})
	return shared
}

// served is a reference server on loopback and its completed export's manifest.
type served struct {
	base     string
	manifest *check.Manifest
	// resources is how many the export holds: the count a one-file export's file is held to (the fut
	// manifest counts none, as HAPI's)
	resources int
}

// server starts (once) the reference server with the export named, and completes one export of it.
func (b *bench) server(name string) (*served, error) {
	if s, ok := b.servers[name]; ok {
		return s, nil
	}
	cfg := refserver.Config{Profile: "fut", ExportDuration: time.Millisecond, Synthetic: refserver.Synthetic{Types: []string{"Patient"}}}
	var err error
	switch name {
	case "big":
		cfg.Synthetic.Bytes, err = refserver.ParseSize(*bigSize)
	case "strict":
		cfg.Synthetic.Bytes, err = refserver.ParseSize(*strictSize)
	case "small":
		var one int64
		one, err = refserver.ParseSize(*fileSize)
		cfg.Synthetic.Bytes, cfg.FilesPerType = int64(*nFiles)*one, *nFiles
	}
	if err != nil {
		return nil, err
	}
	srv, err := refserver.NewServer(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }() // ends with the program
	contents, err := srv.ExportContents()
	if err != nil {
		return nil, err
	}
	s := &served{base: "http://" + ln.Addr().String() + "/fhir"}
	for _, c := range contents {
		s.resources += c.Resources
	}
	if s.manifest, err = completedExport(s.base); err != nil {
		return nil, fmt.Errorf("export of %s: %w", name, err)
	}
	b.servers[name] = s
	return s, nil
}

// completedExport kicks off an export of everything and polls it, honouring Retry-After, to its manifest.
func completedExport(base string) (*check.Manifest, error) {
	hdr := http.Header{"Prefer": {"respond-async"}, "Cache-Control": {"no-cache"}, "Accept": {"application/fhir+json"}, "Authorization": {"Bearer " + refserver.DemoTokenA}}
	resp, err := get(base+"/$export", hdr)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	poll := resp.Header.Get("Content-Location")
	if resp.StatusCode != http.StatusAccepted || poll == "" {
		return nil, fmt.Errorf("kick-off answered %s, Content-Location %q", resp.Status, poll)
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		resp, err := get(poll, hdr)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		switch resp.StatusCode {
		case http.StatusOK:
			var m check.Manifest
			return &m, json.Unmarshal(body, &m)
		case http.StatusAccepted:
			wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			time.Sleep(time.Duration(max(wait, 1)) * time.Second)
		default:
			return nil, fmt.Errorf("poll answered %s", resp.Status)
		}
	}
	return nil, errors.New("the export did not complete within a minute")
}

func get(url string, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header = hdr
	return http.DefaultClient.Do(req)
}

// measured is what a child reports, with its peak resident memory from the kernel.
type measured struct {
	Seconds float64 `json:"seconds"`
	Bytes   int64   `json:"bytes"`
	Lines   int     `json:"lines"`
	Strict  int     `json:"strict"`
	PeakRSS int64   `json:"-"` // bytes
	CPU     float64 `json:"-"` // seconds of user and system time of the child
	// ServerCPU is this process's user and system time while the child ran: the reference server's work
	// (the wall-time rows beside it mostly wait), so that a row shows whether the two cores were the limit.
	ServerCPU float64 `json:"-"`
}

// busy is how many cores the child and the server kept busy on average.
func (m measured) busy() float64 { return (m.CPU + m.ServerCPU) / m.Seconds }

// selfCPU is this process's user and system time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bestOf runs the two sides of a ratio -rounds times, alternating, and keeps the fastest run of each: on a
// shared machine a side is slowed by others' work, never sped up. The peak memory kept is the highest.
func bestOf(a, c func() (measured, error)) (ma, mc measured, err error) {
	keep := func(best *measured, run func() (measured, error)) error {
		m, err := run()
		if err != nil {
			return err
		}
		peak := max(best.PeakRSS, m.PeakRSS)
		if best.Seconds == 0 || m.Seconds < best.Seconds {
			*best = m
		}
		best.PeakRSS = peak
		return nil
	}
	for range max(*rounds, 1) {
		if err := keep(&ma, a); err != nil {
			return ma, mc, err
		}
		if err := keep(&mc, c); err != nil {
			return ma, mc, err
		}
	}
	return ma, mc, nil
}

func (m measured) rate() float64 { return float64(m.Bytes) / m.Seconds / 1e6 }

// spawn runs this program as a child in one mode and reads its report.
func (b *bench) spawn(mode string, args ...string) (measured, error) {
	before := selfCPU()
	cmd := exec.Command(b.self, append([]string{"-child", mode}, args...)...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("BENCHSCALE_FHIR_SAMPLE=%g", *fhirSample))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return measured{}, fmt.Errorf("child %s: %w", mode, err)
	}
	var m measured
	if err := json.Unmarshal(out, &m); err != nil {
		return m, fmt.Errorf("child %s said %q: %w", mode, out, err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.PeakRSS = ru.Maxrss << 10 // KiB on Linux
	}
	m.CPU = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	m.ServerCPU = (selfCPU() - before).Seconds()
	return m, nil
}

// validation is the harness's run over the export's one file, kept so that the memory rows read the
// throughput rows' children.
func (b *bench) validation(export, accept, fhirLines string) (measured, error) {
	key := export + accept + fhirLines
	if m, ok := b.validations[key]; ok {
		return m, nil
	}
	s, err := b.server(export)
	if err != nil {
		return measured{}, err
	}
	if len(s.manifest.Output) != 1 {
		return measured{}, fmt.Errorf("the %s export has %d files, want 1", export, len(s.manifest.Output))
	}
	o := s.manifest.Output[0]
	raw, m, err := bestOf(
		func() (measured, error) { return b.spawn("raw", o.URL, accept) },
		func() (measured, error) {
			return b.spawn("validate", o.URL, accept, o.Type, fhirLines, fmt.Sprint(s.resources))
		})
	if err == nil {
		b.validations[key], b.raws[key] = m, raw
	}
	return m, err
}

// throughput is the harness's validation rate over a plain download's of the same file, measured in
// alternating rounds.
func (b *bench) throughput(export, accept, fhirLines string) (float64, string, error) {
	v, err := b.validation(export, accept, fhirLines)
	if err != nil {
		return 0, "", err
	}
	raw := b.raws[export+accept+fhirLines]
	return raw.Seconds / v.Seconds, fmt.Sprintf("%.0f MB/s / %.0f MB/s over %d MB, %d lines, %d decoded strictly; best of %d rounds",
		v.rate(), raw.rate(), v.Bytes/1e6, v.Lines, v.Strict, max(*rounds, 1)), nil
}

func (b *bench) memory(export, accept string) (float64, string, error) {
	v, err := b.validation(export, accept, "")
	if err != nil {
		return 0, "", err
	}
	return float64(v.PeakRSS) / memoryGoal, fmt.Sprintf("%d MiB / 150 MiB (Maxrss of the child over %d MB)", v.PeakRSS>>20, v.Bytes/1e6), nil
}

// manyFiles is the suite's download of the small files over the plain client's; fhirLines "none" turns the
// suite's strict decoding off, "" keeps the harness's default.
func (b *bench) manyFiles(fhirLines string) (float64, string, error) {
	s, err := b.server("small")
	if err != nil {
		return 0, "", err
	}
	path, err := writeManifest(s.manifest)
	if err != nil {
		return 0, "", err
	}
	defer os.Remove(path)
	par := fmt.Sprint(*parallel)
	raw, suite, err := bestOf(
		func() (measured, error) { return b.spawn("files-raw", path, par) },
		func() (measured, error) { return b.spawn("files-suite", path, par, fhirLines) })
	if err != nil {
		return 0, "", err
	}
	return suite.Seconds / raw.Seconds, fmt.Sprintf("%.2f s / %.2f s for %d files, %d MB, %d lines, %d decoded strictly, %d connections; the suite's CPU %.2f s, the plain client's %.2f s; the server's %.2f s and %.2f s; cores busy %.2f and %.2f; best of %d rounds",
		suite.Seconds, raw.Seconds, len(s.manifest.Output), raw.Bytes/1e6, suite.Lines, suite.Strict, *parallel, suite.CPU, raw.CPU, suite.ServerCPU, raw.ServerCPU, suite.busy(), raw.busy(), max(*rounds, 1)), nil
}
