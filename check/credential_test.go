package check

import (
	"encoding/base64"
	"testing"
	"time"
)

func jwt(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc([]byte(claims)) + ".c2lnbmF0dXJl"
}

func TestTokenExpiryReadsAJWTsExpClaim(t *testing.T) {
	for name, c := range map[string]struct {
		token string
		want  time.Time
		ok    bool
	}{
		"exp":             {jwt(`{"sub":"a","exp":1796300000}`), time.Unix(1796300000, 0).UTC(), true},
		"fractional exp":  {jwt(`{"exp":1796300000.5}`), time.Unix(1796300000, 5e8).UTC(), true},
		"padded":          {"a." + base64.URLEncoding.EncodeToString([]byte(`{"exp":1796300000} `)) + ".c", time.Unix(1796300000, 0).UTC(), true},
		"no exp":          {jwt(`{"sub":"a"}`), time.Time{}, false},
		"string exp":      {jwt(`{"exp":"1796300000"}`), time.Time{}, false},
		"opaque":          {"2YotnFZFEjr1zCsicMWpAA", time.Time{}, false},
		"encrypted (JWE)": {"a.b.c.d.e", time.Time{}, false},
		"not base64":      {"a.!!!.c", time.Time{}, false},
		"not JSON":        {"a." + base64.RawURLEncoding.EncodeToString([]byte("exp")) + ".c", time.Time{}, false},
		"absurd exp":      {jwt(`{"exp":1e300}`), time.Time{}, false},
	} {
		got, ok := TokenExpiry(c.token)
		if ok != c.ok || !got.Equal(c.want) {
			t.Errorf("%s: got %v %v, want %v %v", name, got, ok, c.want, c.ok)
		}
	}
}
