package packager

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"helm.sh/helm/v3/pkg/provenance"
)

// Signer writes helm provenance files (.prov): an OpenPGP clear signature
// over the chart's metadata and the package's sha256, as `helm package
// --sign` does, so that `helm pull --verify` and `helm install --verify`
// accept the package.
//
// The package bytes are reproducible; a signature is not (it carries its
// own time), so two signers give two different, equally valid .prov files
// for one package.
type Signer struct {
	mu  sync.Mutex // the OpenPGP key is not documented as safe for concurrent use
	sig *provenance.Signatory
}

// NewSigner loads the key whose user id contains key (a name or an email
// address, as gpg matches it) from a keyring file holding secret keys (as
// `gpg --export-secret-keys` writes), and decrypts it with passphrase if it
// is encrypted.
func NewSigner(keyring, key string, passphrase []byte) (*Signer, error) {
	sig, err := provenance.NewFromKeyring(keyring, key)
	if err != nil {
		return nil, fmt.Errorf("load signing key %q from %s: %w", key, keyring, err)
	}
	if sig.Entity == nil {
		return nil, fmt.Errorf("load signing key: no key %q in %s", key, keyring)
	}
	if err := sig.DecryptKey(func(string) ([]byte, error) { return passphrase, nil }); err != nil {
		return nil, fmt.Errorf("unlock signing key %q: %w", key, err)
	}
	return &Signer{sig: sig}, nil
}

// Sign returns the provenance file for p.
func (s *Signer) Sign(p *Package) ([]byte, error) {
	// helm signs a file, named as the package is named in the repository.
	dir, err := os.MkdirTemp("", "chartsync-sign-")
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, p.Filename())
	if err := os.WriteFile(file, p.Data, 0o600); err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	prov, err := s.sig.ClearSign(file)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return []byte(prov), nil
}
