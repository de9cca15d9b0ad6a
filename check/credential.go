package check

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// TokenExpiry is when an access token expires by its exp claim (RFC 7519 §4.1.4), when the token is a signed
// JWT whose claims say so; false for an opaque token, an encrypted one, or claims without a numeric exp. The
// signature is not checked: the time only tells a token that ran out from a server that refused a good one,
// and never decides whether a request is sent.
func TokenExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp json.RawMessage `json:"exp"` // a NumericDate is a JSON number, not a string holding one
	}
	if json.Unmarshal(raw, &claims) != nil || len(claims.Exp) == 0 {
		return time.Time{}, false
	}
	exp, err := strconv.ParseFloat(string(claims.Exp), 64)
	if err != nil || exp <= 0 || exp > math.MaxInt64/1e9 || math.IsNaN(exp) {
		return time.Time{}, false
	}
	sec, frac := math.Modf(exp)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
}
