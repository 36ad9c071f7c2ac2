package packager

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/provenance"

	"github.com/chartsync/chartsync/internal/testenv"
)

func TestSignedPackageVerifies(t *testing.T) {
	secring, pubring := testenv.Keyring(t, "Chart Publisher", "charts@example.org")
	signer, err := NewSigner(secring, "charts@example.org", nil)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"charts/a/Chart.yaml":        "apiVersion: v2\nname: a\nversion: 1.0.0\n",
		"charts/a/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
		"charts/a/values.yaml":       "x: 1\n",
	})
	charts, errs := Discover(context.Background(), os.DirFS(root), []string{"charts/*"})
	if len(errs) > 0 || len(charts) != 1 {
		t.Fatalf("discover: %v %v", charts, errs)
	}
	pkg, err := Build(context.Background(), os.DirFS(root), charts[0], Options{Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(pkg.Provenance), "sha256:"+pkg.Digest) {
		t.Errorf("provenance does not name the package digest:\n%s", pkg.Provenance)
	}

	// Verify as helm does, with only the public key.
	dir := t.TempDir()
	tgz := filepath.Join(dir, pkg.Filename())
	os.WriteFile(tgz, pkg.Data, 0o644)
	os.WriteFile(tgz+".prov", pkg.Provenance, 0o644)
	verifier, err := provenance.NewFromKeyring(pubring, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifier.Verify(tgz, tgz+".prov"); err != nil {
		t.Errorf("verify: %v", err)
	}
	// Other bytes under the same name do not verify.
	os.WriteFile(tgz, append(pkg.Data, 0), 0o644)
	if _, err := verifier.Verify(tgz, tgz+".prov"); err == nil {
		t.Error("a changed package verified")
	}
}

func TestNewSignerErrors(t *testing.T) {
	secring, pubring := testenv.Keyring(t, "Chart Publisher", "charts@example.org")
	for _, tt := range []struct {
		name, keyring, key, wantErr string
	}{
		{"missing keyring", filepath.Join(t.TempDir(), "nope.gpg"), "charts@example.org", "no such file"},
		{"unknown key", secring, "someone@example.org", `no key "someone@example.org"`},
		{"public key only", pubring, "charts@example.org", "not a private key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSigner(tt.keyring, tt.key, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
