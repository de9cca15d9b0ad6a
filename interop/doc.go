// Package interop runs real, independently written Bulk Data clients against the reference server, to prove
// that what the harness accepts also works for software nobody on this project wrote. It is a nested module so
// that the clients' dependencies never reach the harness's own go.mod.
//
// bulkfhir_test.go: Google's bulk_fhir_tools client (module github.com/google/bulk_fhir_tools, package
// bulkfhir, v0.1.7).
package interop
