package check

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ParseRetryAfter reads a Retry-After value: delay-seconds or an HTTP-date (RFC 9110 §10.2.3), the latter
// relative to now. A date in the past is a zero delay. delay-seconds is 1*DIGIT, with no upper bound: a value
// of more than MaxRetryAfter (one beyond any integer type included) is valid and reads as MaxRetryAfter, as
// RFC 9111 §1.2.2 has a cache read a delta-seconds too large to represent; the Poller then gives up at once,
// the wait being past MAX_WAIT.
func ParseRetryAfter(value string, now time.Time) (time.Duration, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, errors.New("empty Retry-After")
	}
	if isDigits(value) {
		secs, err := strconv.ParseInt(value, 10, 64)
		if err != nil || secs > int64(MaxRetryAfter/time.Second) { // only digits: the one error is a value out of int64's range
			return MaxRetryAfter, nil
		}
		return time.Duration(secs) * time.Second, nil
	}
	at, err := http.ParseTime(value)
	if err != nil {
		return 0, fmt.Errorf("Retry-After %q: neither delay-seconds nor an HTTP-date", value)
	}
	if d := at.Sub(now); d > 0 {
		return d, nil
	}
	return 0, nil
}

// MaxRetryAfter is the delay a delay-seconds value saturates at: 2^31 seconds (about 68 years), RFC 9111
// §1.2.2's value for a delta-seconds too large to represent.
const MaxRetryAfter = (1 << 31) * time.Second

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
