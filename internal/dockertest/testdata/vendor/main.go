// Command vendor is a stand-in for a vendor's FHIR server image in the container tests: how it misbehaves is
// chosen by its environment, so that one small FROM scratch image (dockertest.VendorImage) plays every case.
//
//	MODE=crash   print SECRET_VALUE on stdout and stderr and exit 3 at once
//	MODE=silent  print SECRET_VALUE, then never listen
//	MODE=status  listen on PORT (default 8080) and answer every request with STATUS (default 500)
//	MODE=fhir    listen on PORT and answer a CapabilityStatement on BASE_PATH/metadata, STATUS (default 404)
//	             elsewhere
//	DIE_ON       with MODE=status or fhir: exit 137 at the first request whose path ends so, as a server
//	             killed mid-run would
package main

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	mode := os.Getenv("MODE")
	fmt.Printf("vendor server starting: mode %s, secret %s\n", mode, os.Getenv("SECRET_VALUE"))
	switch mode {
	case "crash":
		fmt.Fprintf(os.Stderr, "fatal: cannot log in to the database with %s\n", os.Getenv("SECRET_VALUE"))
		os.Exit(3)
	case "silent":
		time.Sleep(24 * time.Hour)
		return
	}
	status, err := strconv.Atoi(os.Getenv("STATUS"))
	switch {
	case err == nil:
	case mode == "fhir":
		status = http.StatusNotFound
	default:
		status = http.StatusInternalServerError
	}
	base := os.Getenv("BASE_PATH")
	dieOn := os.Getenv("DIE_ON")
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if dieOn != "" && strings.HasSuffix(r.URL.Path, dieOn) {
			fmt.Println("dying on", r.URL.Path)
			os.Exit(137)
		}
		if mode == "fhir" && r.URL.Path == base+"/metadata" {
			w.Header().Set("Content-Type", "application/fhir+json")
			fmt.Fprint(w, `{"resourceType":"CapabilityStatement","status":"active","kind":"instance","fhirVersion":"4.0.1","format":["json"]}`)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		fmt.Fprint(w, "<html><body>not here</body></html>")
	})
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	fmt.Println("listening on", port)
	if err := http.ListenAndServe(":"+port, nil); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
}
