package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/gorilla/securecookie"
)

// HKDF info labels: one per purpose, so that no two uses share a key.
const (
	infoTokenKey   = "permsync/v1/token-encryption"
	infoKeyID      = "permsync/v1/token-key-id"
	infoCookieHash = "permsync/v1/session-cookie-hmac"
	infoFlowHash   = "permsync/v1/flow-cookie-hmac"
	infoFlowBlock  = "permsync/v1/flow-cookie-aes"
	infoCSRF       = "permsync/v1/csrf-hmac"
)

// sealVersion is the first byte of every sealed blob.
const sealVersion = 1

// errNoKey means a sealed blob was made with a key we no longer hold.
var errNoKey = errors.New("auth: no key for sealed data (was PERMSYNC_SECRET rotated away?)")

// Keyring holds every key permsync derives from PERMSYNC_SECRET. Secrets are
// listed newest first: the newest seals and signs, every one opens and
// verifies, so a secret can be rotated without signing anyone out.
type Keyring struct {
	aeads      []keyedAEAD
	cookie     []securecookie.Codec // signs the session cookie (the random id)
	flow       []securecookie.Codec // signs and encrypts the short-lived login flow cookie
	flash      []securecookie.Codec // signs and encrypts flash messages for signed-out visitors
	csrf       [][]byte             // HMAC keys of CSRF tokens
	maxFlowAge int
}

type keyedAEAD struct {
	id   [4]byte
	aead cipher.AEAD
}

// NewKeyring derives the keys (HKDF-SHA256, one info label per purpose) from
// the secrets, newest first.
func NewKeyring(secrets []string) (*Keyring, error) {
	if len(secrets) == 0 {
		return nil, errors.New("auth: at least one secret is required")
	}
	k := &Keyring{maxFlowAge: int(flowTTL.Seconds())}
	for i, s := range secrets {
		if len(s) < 32 {
			return nil, fmt.Errorf("auth: secret %d is shorter than 32 characters", i+1)
		}
		derive := func(info string, n int) []byte {
			b, err := hkdf.Key(sha256.New, []byte(s), nil, info, n)
			if err != nil {
				panic(err) // only for lengths HKDF-SHA256 cannot produce; ours are fixed and valid
			}
			return b
		}
		block, err := aes.NewCipher(derive(infoTokenKey, 32))
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		ka := keyedAEAD{aead: aead}
		copy(ka.id[:], derive(infoKeyID, 4))
		k.aeads = append(k.aeads, ka)

		c := securecookie.New(derive(infoCookieHash, 32), nil)
		c.MaxAge(0) // the row's expiry decides, not the cookie's timestamp
		k.cookie = append(k.cookie, c)

		f := securecookie.New(derive(infoFlowHash, 32), derive(infoFlowBlock, 32))
		f.MaxAge(k.maxFlowAge)
		f.SetSerializer(securecookie.JSONEncoder{})
		k.flow = append(k.flow, f)

		fl := securecookie.New(derive(infoFlowHash+"/flash", 32), derive(infoFlowBlock+"/flash", 32))
		fl.MaxAge(300)
		fl.SetSerializer(securecookie.JSONEncoder{})
		k.flash = append(k.flash, fl)

		k.csrf = append(k.csrf, derive(infoCSRF, 32))
	}
	return k, nil
}

// CSRFToken is the request-forgery token bound to binding (a session's id,
// or a signed-out visitor's pre-session cookie) for purpose: HMAC-SHA256
// under the newest key, base64url. Nobody without PERMSYNC_SECRET can make
// one for a binding they do not already have a token for.
func (k *Keyring) CSRFToken(purpose, binding string) string {
	return csrfMAC(k.csrf[0], purpose, binding)
}

// CheckCSRF reports, in constant time per key, whether token is the CSRF
// token of binding for purpose under any key of the ring (so rotating the
// secret does not break forms already on screen).
func (k *Keyring) CheckCSRF(purpose, binding, token string) bool {
	if binding == "" || token == "" {
		return false
	}
	ok := false
	for _, key := range k.csrf {
		if hmac.Equal([]byte(csrfMAC(key, purpose, binding)), []byte(token)) {
			ok = true
		}
	}
	return ok
}

func csrfMAC(key []byte, purpose, binding string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write([]byte(binding))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Seal encrypts plaintext with AES-256-GCM under the newest key. aad binds the
// ciphertext to its context (for example the session id), so a blob cannot be
// moved to another row. Layout: version(1) | key id(4) | nonce(12) | ciphertext.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	ka := k.aeads[0]
	out := make([]byte, 5, 5+ka.aead.NonceSize()+len(plaintext)+ka.aead.Overhead())
	out[0] = sealVersion
	copy(out[1:5], ka.id[:])
	nonce := make([]byte, ka.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out = append(out, nonce...)
	return ka.aead.Seal(out, nonce, plaintext, aad), nil
}

// Open decrypts a blob made by Seal with any key of the ring.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < 5 || sealed[0] != sealVersion {
		return nil, errors.New("auth: sealed data has an unknown format")
	}
	for _, ka := range k.aeads {
		if !slices.Equal(ka.id[:], sealed[1:5]) {
			continue
		}
		ns := ka.aead.NonceSize()
		if len(sealed) < 5+ns {
			return nil, errors.New("auth: sealed data is truncated")
		}
		pt, err := ka.aead.Open(nil, sealed[5:5+ns], sealed[5+ns:], aad)
		if err != nil {
			return nil, fmt.Errorf("auth: open sealed data: %w", err)
		}
		return pt, nil
	}
	return nil, errNoKey
}

// sealJSON marshals v and seals it.
func (k *Keyring) sealJSON(v any, aad string) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return k.Seal(b, []byte(aad))
}

// openJSON opens a blob and unmarshals it into v.
func (k *Keyring) openJSON(sealed []byte, aad string, v any) error {
	b, err := k.Open(sealed, []byte(aad))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
