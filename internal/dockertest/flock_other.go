//go:build !unix

package dockertest

import "os"

// flock is a no-op where flock(2) does not exist: Docker tests of different packages may then overlap, and
// a leftover check may see another package's container.
func flock(*os.File) error { return nil }
