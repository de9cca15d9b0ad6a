package check
import ("bytes";"os";"testing")
func BenchmarkZZPatient(b *testing.B) {
	data, _ := os.ReadFile("/tmp/pat.ndjson")
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	d := NewFHIRDecoder()
	i := 0
	for b.Loop() {
		if err := d(lines[i%len(lines)]); err != nil { b.Fatal(err) }
		i++
	}
}
func BenchmarkZZPatientFresh(b *testing.B) {
	data, _ := os.ReadFile("/tmp/pat.ndjson")
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	i := 0
	for b.Loop() {
		d := NewFHIRDecoder()
		if err := d(lines[i%len(lines)]); err != nil { b.Fatal(err) }
		i++
	}
}
