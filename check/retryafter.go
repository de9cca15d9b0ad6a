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
// relative to now. A date in the past is a zero delay.
func ParseRetryAfter(value string, now time.Time) (time.Duration, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, errors.New("empty Retry-After")
	}
	if isDigits(value) {
		secs, err := strconv.ParseInt(value, 10, 64)
		if err != nil || secs > int64(365*24*time.Hour/time.Second) {
			return 0, fmt.Errorf("Retry-After %q: delay-seconds out of range", value)
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

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
