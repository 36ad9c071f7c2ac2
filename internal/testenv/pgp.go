package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Keyring makes a new OpenPGP key for uid ("Name <email>") and writes it
// as two binary keyrings, as gpg exports them: secring (the secret key,
// unencrypted) for signing and pubring (the public key) for `helm
// --verify --keyring`.
func Keyring(t testing.TB, name, email string) (secring, pubring string) {
	t.Helper()
	cfg := &packet.Config{RSABits: 2048}
	e, err := openpgp.NewEntity(name, "test", email, cfg)
	if err != nil {
		t.Fatalf("make OpenPGP key: %v", err)
	}
	dir := t.TempDir()
	secring, pubring = filepath.Join(dir, "secring.gpg"), filepath.Join(dir, "pubring.gpg")
	write := func(file string, serialize func(f *os.File) error) {
		f, err := os.Create(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := serialize(f); err != nil {
			t.Fatalf("write %s: %v", file, err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	write(secring, func(f *os.File) error { return e.SerializePrivate(f, cfg) })
	write(pubring, func(f *os.File) error { return e.Serialize(f) })
	return secring, pubring
}
