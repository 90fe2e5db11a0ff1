package auth

import (
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Verifier verifies tokens like Verify and remembers the tokens it accepted, so that a client
// sending the same token with every request (every client does) pays for the HMAC and the
// parsing once. A remembered token is accepted only within the validity its time claims give it
// (nbf, iat, exp), so a cached token expires exactly when a verified one would. It is safe for
// concurrent use.
type Verifier struct {
	secret []byte
	now    func() time.Time

	mu    sync.Mutex
	known map[string]knownToken
}

type knownToken struct {
	user     string
	from     time.Time // zero: no lower bound
	until    time.Time // zero: no expiry
	verified time.Time
}

// maxKnownTokens bounds the memory of a Verifier: when full, it forgets every token.
const maxKnownTokens = 1024

// NewVerifier returns a Verifier for secret.
func NewVerifier(secret []byte) *Verifier {
	return &Verifier{secret: secret, now: time.Now, known: make(map[string]knownToken)}
}

// Verify is Verify(secret, token) with the memory described at Verifier.
func (v *Verifier) Verify(token string) (string, error) {
	now := v.now()
	v.mu.Lock()
	k, ok := v.known[token]
	v.mu.Unlock()
	if ok && (k.from.IsZero() || !now.Before(k.from)) && (k.until.IsZero() || now.Before(k.until)) {
		return k.user, nil
	}
	user, err := verify(v.secret, token, v.now)
	if err != nil {
		return "", err
	}
	k = knownToken{user: user, verified: now}
	// The token verified: its claims parse, and the window they give is what jwt checks (exp
	// is exclusive, nbf and iat inclusive).
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err == nil {
		if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
			k.until = exp.Time
		}
		for _, get := range []func() (*jwt.NumericDate, error){claims.GetNotBefore, claims.GetIssuedAt} {
			if t, err := get(); err == nil && t != nil && t.After(k.from) {
				k.from = t.Time
			}
		}
	} else {
		return user, nil // not remembered
	}
	v.mu.Lock()
	if len(v.known) >= maxKnownTokens {
		clear(v.known)
	}
	v.known[token] = k
	v.mu.Unlock()
	return user, nil
}
