package devkinde

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/go-jose/go-jose/v4"
)

// keyBits is the RSA modulus size Kinde uses.
const keyBits = 2048

// generateKey makes a new RSA signing key. Tests replace it to avoid paying
// for key generation in every server they start.
var generateKey = func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, keyBits) }

// signingKey is the RS256 key behind the JWKS, tokens and webhook JWS.
type signingKey struct {
	kid  string
	priv *rsa.PrivateKey

	// verified remembers the payloads of tokens whose signature checked
	// out, so a client presenting the same M2M token on every call pays
	// for one RSA verification, not one per call. Bounded: emptied when full.
	mu       sync.Mutex
	verified map[string][]byte
}

// maxVerified bounds signingKey.verified.
const maxVerified = 1024

// kidFor derives a Kinde-style key id: colon-separated hex of the first 16
// bytes of the SHA-256 of the public key.
func kidFor(pub *rsa.PublicKey) string {
	der, _ := x509.MarshalPKIXPublicKey(pub)
	sum := sha256.Sum256(der)
	h := hex.EncodeToString(sum[:16])
	parts := make([]string, 0, 16)
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// loadOrCreateKey returns the key saved in dir, or a new one (saved into dir
// when dir is set).
func loadOrCreateKey(dir string) (*signingKey, error) {
	if dir != "" {
		raw, err := os.ReadFile(filepath.Join(dir, keysFile))
		switch {
		case err == nil:
			var jwk jose.JSONWebKey
			if err := json.Unmarshal(raw, &jwk); err != nil {
				return nil, fmt.Errorf("parse %s: %w", keysFile, err)
			}
			priv, ok := jwk.Key.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("%s: not an RSA private key", keysFile)
			}
			return &signingKey{kid: jwk.KeyID, priv: priv}, nil
		case !errors.Is(err, os.ErrNotExist):
			return nil, err
		}
	}
	priv, err := generateKey()
	if err != nil {
		return nil, err
	}
	k := &signingKey{kid: kidFor(&priv.PublicKey), priv: priv}
	if dir != "" {
		raw, err := json.Marshal(jose.JSONWebKey{Key: priv, KeyID: k.kid, Algorithm: string(jose.RS256), Use: "sig"})
		if err != nil {
			return nil, err
		}
		if err := writeFileAtomic(filepath.Join(dir, keysFile), raw); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// jwks is the public key set served at /.well-known/jwks.
func (k *signingKey) jwks() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: string(jose.RS256), Use: "sig",
	}}}
}

// sign returns a compact RS256 JWS over the JSON encoding of claims, with the
// kid and typ JWT headers.
func (k *signingKey) sign(claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", k.kid)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k.priv}, opts)
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// verify checks a compact JWS made by sign and decodes its payload into out.
func (k *signingKey) verify(token string, out any) error {
	k.mu.Lock()
	payload, ok := k.verified[token]
	k.mu.Unlock()
	if ok {
		return json.Unmarshal(payload, out)
	}
	obj, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return err
	}
	if len(obj.Signatures) != 1 || obj.Signatures[0].Header.KeyID != k.kid {
		return errors.New("unknown signing key")
	}
	payload, err = obj.Verify(&k.priv.PublicKey)
	if err != nil {
		return err
	}
	k.mu.Lock()
	if k.verified == nil || len(k.verified) >= maxVerified {
		k.verified = make(map[string][]byte)
	}
	k.verified[token] = payload
	k.mu.Unlock()
	return json.Unmarshal(payload, out)
}
