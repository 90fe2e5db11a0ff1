package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// errEmptySecret guards against signing or verifying with no key at all.
var errEmptySecret = errors.New("jwt secret is empty")

// Mint signs claims with secret as an HS256 token.
func Mint(secret []byte, claims jwt.MapClaims) (string, error) {
	if len(secret) == 0 {
		return "", errEmptySecret
	}
	if claims == nil {
		claims = jwt.MapClaims{}
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("sign jwt: %w", err)
	}
	return token, nil
}

// DebugToken returns the token that `prunner debug` prints: HS256 with only an iat claim, so it
// never expires.
func DebugToken(secret []byte, now time.Time) (string, error) {
	return Mint(secret, jwt.MapClaims{"iat": now.Unix()})
}

// Verify checks an HS256 token signed with secret and returns its sub claim ("" when the claim is
// missing or not a string). Any other algorithm, including "none", is rejected. The time claims
// exp, nbf and iat are checked when present (no leeway) and are optional, so a signed token
// without claims is valid.
func Verify(secret []byte, token string) (user string, err error) {
	return verify(secret, token, time.Now)
}

// verify is Verify at the time now tells.
func verify(secret []byte, token string, now func() time.Time) (user string, err error) {
	if len(secret) == 0 {
		return "", errEmptySecret
	}
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		// WithValidMethods already enforces this; checking again keeps the key function safe
		// on its own.
		if t.Method != jwt.SigningMethodHS256 {
			return nil, fmt.Errorf("unexpected signing method %q", t.Method.Alg())
		}
		return secret, nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		// jwt/v5 checks exp and nbf whenever present but iat only with this option; iat in
		// the future means the token is not valid yet.
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(now),
	)
	if err != nil {
		return "", fmt.Errorf("verify jwt: %w", err)
	}
	sub, _ := claims["sub"].(string)
	return sub, nil
}
