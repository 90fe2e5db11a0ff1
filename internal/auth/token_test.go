package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testSecret = []byte("test-secret-0123456789")

// unsignedToken builds an alg "none" token with the given claims.
func unsignedToken(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func signed(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestMintAndVerify(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tok, err := Mint(testSecret, jwt.MapClaims{"sub": "alice", "exp": now.Add(time.Minute).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	header, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"alg":"HS256"`) {
		t.Errorf("token header = %s, want alg HS256", raw)
	}
	user, err := Verify(testSecret, tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if user != "alice" {
		t.Errorf("user = %q, want alice", user)
	}
}

func TestDebugToken(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tok, err := DebugToken(testSecret, now)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return testSecret, nil }); err != nil {
		t.Fatal(err)
	}
	if len(claims) != 1 {
		t.Errorf("claims = %v, want only iat", claims)
	}
	if iat, _ := claims["iat"].(float64); int64(iat) != now.Unix() {
		t.Errorf("iat = %v, want %d", claims["iat"], now.Unix())
	}
	user, err := Verify(testSecret, tok)
	if err != nil {
		t.Fatalf("Verify(debug token): %v", err)
	}
	if user != "" {
		t.Errorf("user = %q, want empty", user)
	}
}

func TestVerifyMatrix(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	hs := func(claims jwt.MapClaims) string { return signed(t, jwt.SigningMethodHS256, testSecret, claims) }

	tests := []struct {
		name     string
		token    string
		wantUser string
		wantErr  bool
	}{
		{name: "no claims", token: hs(jwt.MapClaims{})},
		{name: "sub", token: hs(jwt.MapClaims{"sub": "bob"}), wantUser: "bob"},
		{name: "sub not a string", token: hs(jwt.MapClaims{"sub": 42})},
		{name: "exp in the future", token: hs(jwt.MapClaims{"sub": "c", "exp": now.Add(time.Minute).Unix()}), wantUser: "c"},
		{name: "iat in the past", token: hs(jwt.MapClaims{"iat": now.Add(-time.Hour).Unix()})},
		{name: "nbf in the past", token: hs(jwt.MapClaims{"nbf": now.Add(-time.Hour).Unix()})},

		{name: "expired", token: hs(jwt.MapClaims{"exp": now.Add(-time.Minute).Unix()}), wantErr: true},
		{name: "nbf in the future", token: hs(jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()}), wantErr: true},
		{name: "iat in the future", token: hs(jwt.MapClaims{"iat": now.Add(time.Hour).Unix()}), wantErr: true},
		{name: "exp not a number", token: hs(jwt.MapClaims{"exp": "tomorrow"}), wantErr: true},
		{name: "wrong secret", token: signed(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789"), jwt.MapClaims{}), wantErr: true},
		{name: "alg none", token: unsignedToken(t, jwt.MapClaims{"sub": "mallory"}), wantErr: true},
		{name: "HS384", token: signed(t, jwt.SigningMethodHS384, testSecret, jwt.MapClaims{}), wantErr: true},
		{name: "HS512", token: signed(t, jwt.SigningMethodHS512, testSecret, jwt.MapClaims{}), wantErr: true},
		{name: "RS256", token: signed(t, jwt.SigningMethodRS256, rsaKey, jwt.MapClaims{}), wantErr: true},
		{name: "malformed", token: "not.a.jwt", wantErr: true},
		{name: "empty", token: "", wantErr: true},
		{name: "truncated signature", token: func() string { s := hs(jwt.MapClaims{}); return s[:len(s)-3] }(), wantErr: true},
		{name: "tampered payload", token: func() string {
			parts := strings.Split(hs(jwt.MapClaims{"sub": "bob"}), ".")
			parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin"}`))
			return strings.Join(parts, ".")
		}(), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			user, err := Verify(testSecret, tt.token)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Verify succeeded (user %q), want an error", user)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if user != tt.wantUser {
				t.Errorf("user = %q, want %q", user, tt.wantUser)
			}
		})
	}
}

func TestEmptySecretRejected(t *testing.T) {
	t.Parallel()
	if _, err := Mint(nil, jwt.MapClaims{}); err == nil {
		t.Error("Mint with an empty secret succeeded")
	}
	tok := signed(t, jwt.SigningMethodHS256, []byte("x"), jwt.MapClaims{})
	if _, err := Verify(nil, tok); err == nil {
		t.Error("Verify with an empty secret succeeded")
	}
}

// TestVerifierRemembersWithinValidity: a remembered token is accepted again without its
// signature being checked, but never outside the window of its time claims; a rejected token
// is never remembered.
func TestVerifierRemembersWithinValidity(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	v := NewVerifier(testSecret)
	v.now = func() time.Time { return now }
	sign := func(claims jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(testSecret)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tok := sign(jwt.MapClaims{"sub": "ann", "exp": now.Add(time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix()})
	for range 2 {
		if user, err := v.Verify(tok); err != nil || user != "ann" {
			t.Fatalf("Verify() = %q, %v; want ann", user, err)
		}
	}
	if len(v.known) != 1 {
		t.Fatalf("%d tokens remembered, want 1", len(v.known))
	}
	now = now.Add(time.Minute) // exp is exclusive
	if _, err := v.Verify(tok); err == nil {
		t.Error("Verify() of a remembered token after its exp succeeded")
	}
	now = now.Add(-2 * time.Minute)
	early := sign(jwt.MapClaims{"iat": now.Add(time.Second).Unix()})
	if _, err := v.Verify(early); err == nil {
		t.Error("Verify() of a token issued in the future succeeded")
	}
	now = now.Add(time.Second)
	if _, err := v.Verify(early); err != nil {
		t.Errorf("Verify() at its iat = %v", err)
	}
	now = now.Add(-time.Second)
	if _, err := v.Verify(early); err == nil {
		t.Error("Verify() of a remembered token before its iat succeeded")
	}
	forged := tok[:len(tok)-2] + "xx"
	for range 2 {
		if _, err := v.Verify(forged); err == nil {
			t.Error("Verify() of a forged token succeeded")
		}
	}
	if _, ok := v.known[forged]; ok {
		t.Error("a rejected token was remembered")
	}
}
