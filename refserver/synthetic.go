package refserver

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Synthetic configures a generated export dataset, used instead of data files: an export of any size that
// needs nothing but this repository and costs no memory. Every resource is a function of (Seed, type, index),
// so any file is generated on its own, the same bytes on every download, and its count is known exactly
// without generating anything.
type Synthetic struct {
	// Bytes is the approximate total size of the export's NDJSON (all types together, split evenly). The
	// number of resources per type is Bytes/len(Types) divided by the mean size of that type's resources.
	Bytes int64
	// Resources is the exact number of resources per type, instead of Bytes.
	Resources int64
	// Types are the resource types generated; nil: SyntheticTypes.
	Types []string
	// Seed varies the content (names, dates, values); the same seed gives the same bytes.
	Seed int64
}

// SyntheticTypes are the resource types the generator knows, each a valid FHIR R4 resource.
var SyntheticTypes = []string{"CarePlan", "Observation", "Patient"}

// syntheticEpoch is the meta.lastUpdated of resource 0; resource i was updated i seconds later, so a _since
// filter keeps an exact, computable range of indices.
var syntheticEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func (s Synthetic) enabled() bool { return s.Bytes > 0 || s.Resources > 0 }

func (s Synthetic) validate() error {
	var errs []error
	if s.Bytes < 0 || s.Resources < 0 {
		errs = append(errs, errors.New("synthetic data: bytes and resources must not be negative"))
	}
	if s.Bytes > 0 && s.Resources > 0 {
		errs = append(errs, errors.New("synthetic data: give bytes or resources, not both"))
	}
	if len(s.Types) > 0 && !s.enabled() {
		errs = append(errs, errors.New("synthetic data: types given without bytes or resources"))
	}
	for _, t := range s.Types {
		if !slices.Contains(SyntheticTypes, t) {
			errs = append(errs, fmt.Errorf("synthetic data: type %q is not generated; known types: %s", t, strings.Join(SyntheticTypes, ", ")))
		}
	}
	return errors.Join(errs...)
}

// synthType is the generated resources of one type.
type synthType struct {
	typ      string
	n        int64 // resources
	parts    int64 // files
	seed     uint64
	patients int64  // how many Patients references pick from
	idPrefix string // "patient-": resource i has id "patient-<i>"
}

func syntheticDataset(cfg Synthetic, filesPerType int) (*dataset, error) {
	types := slices.Clone(cfg.Types)
	if len(types) == 0 {
		types = slices.Clone(SyntheticTypes)
	}
	slices.Sort(types)
	types = slices.Compact(types)
	ds := &dataset{byType: make(map[string]typeSource), types: types}
	srcs := make([]*synthType, len(types))
	for i, typ := range types {
		h := fnv.New64a()
		h.Write([]byte(typ))
		st := &synthType{typ: typ, n: cfg.Resources, parts: int64(max(filesPerType, 1)), seed: uint64(cfg.Seed) ^ h.Sum64(), patients: 1000, idPrefix: strings.ToLower(typ) + "-"}
		if cfg.Bytes > 0 {
			st.n = max(1, cfg.Bytes/int64(len(types))/st.meanSize())
		}
		srcs[i] = st
		ds.byType[typ] = st
	}
	for _, st := range srcs {
		if p, ok := ds.byType["Patient"].(*synthType); ok {
			st.patients = p.n
		}
	}
	return ds, nil
}

// meanSize is the mean line size of the type's first resources (deterministic: the same for a seed).
func (st *synthType) meanSize() int64 {
	const sample = 256
	var buf []byte
	for i := range int64(sample) {
		buf = st.appendResource(buf, i)
		buf = append(buf, '\n')
	}
	return int64(len(buf)) / sample
}

// firstSince is the first index updated after since.
func firstSince(since time.Time) int64 {
	if since.IsZero() || since.Before(syntheticEpoch) {
		return 0
	}
	return int64(since.Sub(syntheticEpoch)/time.Second) + 1
}

// bounds is the index range [lo, hi) of file chunk, after since.
func (st *synthType) bounds(chunk int, since time.Time) (int64, int64) {
	k := int64(chunk)
	lo, hi := k*st.n/st.parts, (k+1)*st.n/st.parts
	return min(max(lo, firstSince(since)), hi), hi
}

func (st *synthType) files(since time.Time) ([]outputFile, error) {
	var out []outputFile
	for k := range int(st.parts) {
		if lo, hi := st.bounds(k, since); hi > lo {
			out = append(out, outputFile{typ: st.typ, chunk: k, since: since, count: int(hi - lo), size: -1})
		}
	}
	return out, nil
}

func (st *synthType) write(w io.Writer, f outputFile) error {
	lo, hi := st.bounds(f.chunk, f.since)
	buf := make([]byte, 0, 256<<10+4<<10)
	for i := lo; i < hi; i++ {
		buf = st.appendResource(buf, i)
		buf = append(buf, '\n')
		if len(buf) >= 256<<10 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if len(buf) > 0 {
		_, err := w.Write(buf)
		return err
	}
	return nil
}

// rng is splitmix64: a few random numbers per resource, from (seed, index) alone.
type rng uint64

func (r *rng) next() uint64 {
	*r += 0x9e3779b97f4a7c15
	z := uint64(*r)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (r *rng) pick(list []string) string { return list[r.next()%uint64(len(list))] }

var (
	synthFamilies = []string{"Jensen", "Nielsen", "Hansen", "Pedersen", "Andersen", "Christensen", "Larsen", "Sørensen", "Rasmussen", "Jørgensen", "Petersen", "Madsen", "Kristensen", "Olsen", "Thomsen", "Christiansen"}
	synthGiven    = []string{"Anna", "Bo", "Clara", "Mads", "Ida", "Søren", "Freja", "Lars", "Karen", "Niels", "Emma", "Peter", "Sofie", "Jens", "Maja", "Henrik"}
	synthStreets  = []string{"Vestergade", "Østergade", "Nørregade", "Søndergade", "Algade", "Strandvejen", "Skolevej", "Kirkevej"}
	synthCities   = []string{"8000 Aarhus C", "5000 Odense C", "9000 Aalborg", "6700 Esbjerg", "7100 Vejle", "4000 Roskilde", "2100 København Ø", "8800 Viborg"}
	synthTitles   = []string{"Telemedicinsk forløb for KOL", "Telemedicinsk forløb for hjertesvigt", "Graviditetsforløb", "Forløb for type 2-diabetes"}
)

// synthVital is an Observation code with its unit and value range, in tenths.
type synthVital struct {
	code, display, unit, ucum string
	lo, span                  uint64
}

var synthVitals = []synthVital{
	{"8867-4", "Heart rate", "beats/minute", "/min", 500, 700},
	{"8310-5", "Body temperature", "Cel", "Cel", 355, 50},
	{"29463-7", "Body weight", "kg", "kg", 450, 800},
	{"59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", "%", 880, 120},
	{"9279-1", "Respiratory rate", "breaths/minute", "/min", 100, 150},
}

// appendResource appends resource i as one line of compact JSON, without the newline.
func (st *synthType) appendResource(b []byte, i int64) []byte {
	r := rng(st.seed ^ uint64(i)*0xd1b54a32d192ed03)
	updated := syntheticEpoch.Add(time.Duration(i) * time.Second)
	b = append(b, `{"resourceType":"`...)
	b = append(b, st.typ...)
	b = append(b, `","id":"`...)
	b = append(b, st.idPrefix...)
	b = strconv.AppendInt(b, i, 10)
	b = append(b, `","meta":{"lastUpdated":"`...)
	b = appendDateTime(b, updated)
	b = append(b, `.000+00:00"},`...)
	switch st.typ {
	case "Patient":
		birth := time.Date(1930+int(r.next()%90), time.Month(1+r.next()%12), 1+int(r.next()%28), 0, 0, 0, 0, time.UTC)
		female := r.next()%2 == 0
		b = append(b, `"identifier":[{"system":"urn:oid:1.2.208.176.1.2","value":"`...)
		b = append2(append2(append2(b, birth.Day()), int(birth.Month())), birth.Year()%100)
		b = appendDigits(b, r.next(), 4)
		b = append(b, `"}],"active":true,"name":[{"use":"official","family":"`...)
		b = append(b, r.pick(synthFamilies)...)
		b = append(b, `","given":["`...)
		b = append(b, r.pick(synthGiven)...)
		b = append(b, `","`...)
		b = append(b, r.pick(synthGiven)...)
		b = append(b, `"]}],"telecom":[{"system":"phone","value":"+45`...)
		b = appendDigits(b, r.next(), 8)
		b = append(b, `","use":"mobile"}],"gender":"`...)
		if female {
			b = append(b, "female"...)
		} else {
			b = append(b, "male"...)
		}
		b = append(b, `","birthDate":"`...)
		b = appendDate(b, birth)
		postal, city, _ := strings.Cut(r.pick(synthCities), " ")
		b = append(b, `","address":[{"use":"home","line":["`...)
		b = append(b, r.pick(synthStreets)...)
		b = append(b, ' ')
		b = strconv.AppendUint(b, 1+r.next()%120, 10)
		b = append(b, `"],"city":"`...)
		b = append(b, city...)
		b = append(b, `","postalCode":"`...)
		b = append(b, postal...)
		b = append(b, `","country":"DK"}]}`...)
	case "Observation":
		v := synthVitals[r.next()%uint64(len(synthVitals))]
		tenths := v.lo + r.next()%v.span
		b = append(b, `"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"`...)
		b = append(b, v.code...)
		b = append(b, `","display":"`...)
		b = append(b, v.display...)
		b = append(b, `"}]},"subject":{"reference":"Patient/patient-`...)
		b = strconv.AppendUint(b, r.next()%uint64(max(st.patients, 1)), 10)
		b = append(b, `"},"effectiveDateTime":"`...)
		b = updated.Add(-time.Duration(r.next()%3600)*time.Second).AppendFormat(b, fhirDateTimeLayout)
		b = append(b, `","valueQuantity":{"value":`...)
		b = strconv.AppendUint(b, tenths/10, 10)
		b = append(b, '.')
		b = strconv.AppendUint(b, tenths%10, 10)
		b = append(b, `,"unit":"`...)
		b = append(b, v.unit...)
		b = append(b, `","system":"http://unitsofmeasure.org","code":"`...)
		b = append(b, v.ucum...)
		b = append(b, `"}}`...)
	default: // CarePlan
		b = append(b, `"status":"active","intent":"plan","title":"`...)
		b = append(b, r.pick(synthTitles)...)
		b = append(b, `","subject":{"reference":"Patient/patient-`...)
		b = strconv.AppendUint(b, r.next()%uint64(max(st.patients, 1)), 10)
		b = append(b, `"},"period":{"start":"`...)
		b = appendDate(b, updated.AddDate(0, 0, -int(r.next()%365)))
		b = append(b, `"}}`...)
	}
	return b
}

// appendDigits appends the last n decimal digits of v, zero-padded.
func appendDigits(b []byte, v uint64, n int) []byte {
	b = append(b, "0000000000000000"[:n]...)
	for i := len(b) - 1; i >= len(b)-n; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
}

// append2 appends v as two digits.
func append2(b []byte, v int) []byte { return append(b, byte('0'+v/10%10), byte('0'+v%10)) }

// appendDate appends t's UTC date as YYYY-MM-DD; appendDateTime adds Thh:mm:ss (time.AppendFormat costs a
// third of the generator's time).
func appendDate(b []byte, t time.Time) []byte {
	y, m, d := t.UTC().Date()
	b = append2(append2(b, y/100), y%100)
	b = append2(append(b, '-'), int(m))
	return append2(append(b, '-'), d)
}

func appendDateTime(b []byte, t time.Time) []byte {
	hh, mm, ss := t.UTC().Clock()
	b = append(appendDate(b, t), 'T')
	b = append2(b, hh)
	b = append2(append(b, ':'), mm)
	return append2(append(b, ':'), ss)
}

// SyntheticFromStrings reads a Synthetic from the text of flags or environment variables (empty: unset), for
// cmd/refserver and the harness's embedded server; errors name the setting by its environment variable.
func SyntheticFromStrings(size, resources, types, seed string) (Synthetic, error) {
	var s Synthetic
	var errs []error
	if v := strings.TrimSpace(size); v != "" {
		n, err := ParseSize(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("REFSERVER_SYNTHETIC_BYTES: %w", err))
		}
		s.Bytes = n
	}
	if v := strings.TrimSpace(resources); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("REFSERVER_SYNTHETIC_RESOURCES: %q is not a positive number", v))
		}
		s.Resources = n
	}
	if v := strings.TrimSpace(types); v != "" {
		for _, t := range strings.Split(v, ",") {
			s.Types = append(s.Types, strings.TrimSpace(t))
		}
	}
	if v := strings.TrimSpace(seed); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("REFSERVER_SYNTHETIC_SEED: %q is not an integer", v))
		}
		s.Seed = n
	}
	if err := s.validate(); err != nil {
		errs = append(errs, err)
	}
	return s, errors.Join(errs...)
}

// ParseSize parses a byte size: a plain number of bytes, or a number with a unit KB, MB, GB (powers of 1000)
// or KiB, MiB, GiB (powers of 1024), e.g. "1GiB", "500MB", "1048576".
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := int64(1)
	num := s
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || n < 0 || n*float64(mult) > 1<<50 {
		return 0, fmt.Errorf("%q is not a size such as 1GiB, 500MB or 1048576", s)
	}
	return int64(n * float64(mult)), nil
}
