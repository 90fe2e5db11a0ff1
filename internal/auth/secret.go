// Package auth gives prunner its JWT handling: resolving the shared HS256 secret (flag or
// environment, the config file, or a newly created config file), minting tokens and verifying
// them the way the prunner-compatible API requires.
package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// MinSecretLength is the minimum length of a JWT secret, in characters.
const MinSecretLength = 16

// generatedSecretLength is the length of a secret written to a new config file.
const generatedSecretLength = 32

const secretAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// ErrSecretTooShort is returned (wrapped) when a secret has fewer than MinSecretLength characters.
var ErrSecretTooShort = errors.New("jwt secret must be at least 16 characters")

// configFile is the part of the config file that auth reads. Other keys are ignored.
type configFile struct {
	JWTSecret string `yaml:"jwt_secret"`
}

// ResolveSecret returns the JWT secret; the first source that is set wins:
//
//  1. flagSecret (the caller passes --jwt-secret or PRUNNER_JWT_SECRET); the config file is then
//     neither read nor created;
//  2. the key jwt_secret of the YAML file configPath;
//  3. when configPath does not exist, it is created (mode 0600) with a random 32-character
//     [0-9A-Za-z] secret, which is returned.
//
// A secret shorter than MinSecretLength characters is an error. Errors never contain the secret
// or the file's content.
func ResolveSecret(flagSecret, configPath string) ([]byte, error) {
	if flagSecret != "" {
		if utf8.RuneCountInString(flagSecret) < MinSecretLength {
			return nil, ErrSecretTooShort
		}
		return []byte(flagSecret), nil
	}
	if configPath == "" {
		return nil, errors.New("no jwt secret given and no config file path")
	}
	secret, err := readSecret(configPath)
	if errors.Is(err, fs.ErrNotExist) {
		secret, err = createConfig(configPath)
		if errors.Is(err, fs.ErrExist) {
			// Another process created the file between our read and our create: use its secret.
			secret, err = readSecret(configPath)
		}
	}
	if err != nil {
		return nil, err
	}
	return secret, nil
}

// readSecret reads the jwt_secret key of the config file at path. A missing file yields an error
// matching fs.ErrNotExist.
func readSecret(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	var cfg configFile
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		// yaml errors name lines and node kinds, not values, so they cannot leak the secret.
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	if cfg.JWTSecret == "" {
		return nil, fmt.Errorf("config file %s: key jwt_secret missing or empty: %w", path, ErrSecretTooShort)
	}
	if utf8.RuneCountInString(cfg.JWTSecret) < MinSecretLength {
		return nil, fmt.Errorf("config file %s: jwt_secret: %w", path, ErrSecretTooShort)
	}
	return []byte(cfg.JWTSecret), nil
}

// createConfig creates the config file at path with a new random secret and returns the secret.
// It fails with an error matching fs.ErrExist when the file exists already.
func createConfig(path string) ([]byte, error) {
	secret, err := randomSecret(generatedSecretLength)
	if err != nil {
		return nil, fmt.Errorf("config file %s: generate jwt secret: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		return nil, fmt.Errorf("config file %s: create: %w", path, err)
	}
	_, err = fmt.Fprintf(f, "jwt_secret: %s\n", secret)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("config file %s: write: %w", path, err)
	}
	return secret, nil
}

// randomSecret returns n characters drawn uniformly from secretAlphabet with crypto/rand.
func randomSecret(n int) ([]byte, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	// 248 is the largest multiple of len(secretAlphabet) (62) below 256: rejecting bytes at or
	// above it keeps the distribution uniform.
	const limit = 256 - 256%len(secretAlphabet)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return nil, err
		}
		for _, b := range buf {
			if int(b) >= limit {
				continue
			}
			out = append(out, secretAlphabet[int(b)%len(secretAlphabet)])
			if len(out) == n {
				break
			}
		}
	}
	return out, nil
}
