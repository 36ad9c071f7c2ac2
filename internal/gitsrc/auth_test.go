package gitsrc

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	gliderssh "github.com/gliderlabs/ssh"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
)

// newKey makes an ed25519 key pair; with a password the private key file is
// encrypted.
func newKey(t *testing.T, dir, name, password string) (file string, pub ssh.PublicKey, signer ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if password == "" {
		block, err = ssh.MarshalPrivateKey(priv, "")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(password))
	}
	if err != nil {
		t.Fatal(err)
	}
	file = filepath.Join(dir, name)
	if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err = ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return file, signer.PublicKey(), signer
}

func writeKnownHosts(t *testing.T, dir, hostport string, key ssh.PublicKey) string {
	t.Helper()
	p := filepath.Join(dir, "known_hosts")
	host, port, _ := net.SplitHostPort(hostport)
	pattern := host
	if port != "22" {
		pattern = "[" + host + "]:" + port
	}
	line := pattern + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))) + "\n"
	if err := os.WriteFile(p, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAuthMethodHTTPAndLocal(t *testing.T) {
	tests := []struct {
		name string
		url  string
		auth Auth
		want *githttp.BasicAuth // nil: no AuthMethod
	}{
		{name: "local path", url: "/srv/git/charts", auth: Auth{Token: "t", SSHKeyFile: "/k"}},
		{name: "relative path", url: "charts", auth: Auth{Token: "t"}},
		{name: "file URL", url: "file:///srv/git/charts", auth: Auth{Token: "t"}},
		{name: "git URL", url: "git://git.example.org/charts", auth: Auth{Token: "t"}},
		{name: "https anonymous", url: "https://git.example.org/charts.git"},
		{name: "https ssh fields ignored", url: "https://git.example.org/charts.git", auth: Auth{SSHKeyFile: "/k"}},
		{name: "https token", url: "https://git.example.org/charts.git", auth: Auth{Token: "tok"},
			want: &githttp.BasicAuth{Username: DefaultTokenUser, Password: "tok"}},
		{name: "https user and token", url: "https://git.example.org/charts.git", auth: Auth{Username: "bob", Token: "tok"},
			want: &githttp.BasicAuth{Username: "bob", Password: "tok"}},
		{name: "https user only", url: "https://git.example.org/charts.git", auth: Auth{Username: "bob"},
			want: &githttp.BasicAuth{Username: "bob"}},
		{name: "http token", url: "http://127.0.0.1:8080/charts.git", auth: Auth{Token: "tok"},
			want: &githttp.BasicAuth{Username: DefaultTokenUser, Password: "tok"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := authMethod(tt.url, tt.auth)
			if err != nil {
				t.Fatalf("authMethod: %v", err)
			}
			if tt.want == nil {
				if got != nil {
					t.Fatalf("authMethod = %#v, want nil", got)
				}
				return
			}
			ba, ok := got.(*githttp.BasicAuth)
			if !ok {
				t.Fatalf("authMethod = %T, want *http.BasicAuth", got)
			}
			if *ba != *tt.want {
				t.Errorf("authMethod = %+v, want %+v", *ba, *tt.want)
			}
		})
	}
}

func TestAuthMethodSSH(t *testing.T) {
	dir := t.TempDir()
	keyFile, _, _ := newKey(t, dir, "id", "")
	encFile, _, _ := newKey(t, dir, "id_enc", "pw")
	_, hostKey, _ := newKey(t, dir, "host", "")
	_, otherKey, _ := newKey(t, dir, "other", "")
	kh2222 := writeKnownHosts(t, t.TempDir(), "127.0.0.1:2222", hostKey)
	kh22 := writeKnownHosts(t, t.TempDir(), "git.example.org:22", hostKey)

	tests := []struct {
		name     string
		url      string
		auth     Auth
		env      string // SSH_KNOWN_HOSTS
		wantUser string
		hostport string // where the host key must be accepted
		wantErr  string
	}{
		{name: "ssh URL with user and port", url: "ssh://deploy@127.0.0.1:2222/srv/charts.git",
			auth: Auth{SSHKeyFile: keyFile, KnownHostsFile: kh2222}, wantUser: "deploy", hostport: "127.0.0.1:2222"},
		{name: "ssh URL without user", url: "ssh://git.example.org/charts.git",
			auth: Auth{SSHKeyFile: keyFile, KnownHostsFile: kh22}, wantUser: "git", hostport: "git.example.org:22"},
		{name: "scp-like", url: "gerrit@git.example.org:charts.git",
			auth: Auth{SSHKeyFile: keyFile, KnownHostsFile: kh22, Token: "ignored"}, wantUser: "gerrit", hostport: "git.example.org:22"},
		{name: "encrypted key", url: "ssh://git.example.org/charts.git",
			auth: Auth{SSHKeyFile: encFile, SSHKeyPassword: "pw", KnownHostsFile: kh22}, wantUser: "git", hostport: "git.example.org:22"},
		{name: "default known_hosts", url: "ssh://git.example.org/charts.git",
			auth: Auth{SSHKeyFile: keyFile}, env: kh22, wantUser: "git", hostport: "git.example.org:22"},
		{name: "wrong key password", url: "ssh://git.example.org/charts.git",
			auth: Auth{SSHKeyFile: encFile, SSHKeyPassword: "nope", KnownHostsFile: kh22}, wantErr: "ssh key "},
		{name: "encrypted key without password", url: "ssh://git.example.org/charts.git",
			auth: Auth{SSHKeyFile: encFile, KnownHostsFile: kh22}, wantErr: "ssh key "},
		{name: "missing key file", url: "ssh://git.example.org/charts.git",
			auth: Auth{SSHKeyFile: filepath.Join(dir, "missing"), KnownHostsFile: kh22}, wantErr: "ssh key "},
		{name: "missing known_hosts", url: "ssh://git.example.org/charts.git",
			auth: Auth{SSHKeyFile: keyFile, KnownHostsFile: filepath.Join(dir, "missing")}, wantErr: "ssh known_hosts"},
		{name: "no key file and no agent", url: "ssh://git.example.org/charts.git",
			auth: Auth{KnownHostsFile: kh22}, wantErr: "no key file and no agent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SSH_KNOWN_HOSTS", tt.env)
			t.Setenv("SSH_AUTH_SOCK", "")
			got, err := authMethod(tt.url, tt.auth)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("authMethod error = %v, want %q", err, tt.wantErr)
				}
				if tt.auth.SSHKeyPassword != "" && strings.Contains(err.Error(), tt.auth.SSHKeyPassword) {
					t.Errorf("error leaks the key password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("authMethod: %v", err)
			}
			pk, ok := got.(*gitssh.PublicKeys)
			if !ok {
				t.Fatalf("authMethod = %T, want *ssh.PublicKeys", got)
			}
			if pk.User != tt.wantUser {
				t.Errorf("user = %q, want %q", pk.User, tt.wantUser)
			}
			cfg, err := pk.ClientConfig()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(cfg.HostKeyAlgorithms, ssh.KeyAlgoED25519) {
				t.Errorf("HostKeyAlgorithms = %v, want them taken from known_hosts (ssh-ed25519)", cfg.HostKeyAlgorithms)
			}
			addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
			if err := cfg.HostKeyCallback(tt.hostport, addr, hostKey); err != nil {
				t.Errorf("known host key rejected: %v", err)
			}
			if err := cfg.HostKeyCallback(tt.hostport, addr, otherKey); err == nil {
				t.Errorf("unknown host key accepted")
			}
			if err := cfg.HostKeyCallback("elsewhere.example.org:22", addr, hostKey); err == nil {
				t.Errorf("host key accepted for a host not in known_hosts")
			}
		})
	}
}

// TestSyncOverHTTP serves an upstream with the real git http-backend (smart
// HTTP over CGI) on 127.0.0.1, behind basic auth.
func TestSyncOverHTTP(t *testing.T) {
	t.Parallel()
	execPath := runGit(t, "", "--exec-path")
	backend := filepath.Join(execPath, "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		t.Fatalf("git-http-backend not found (part of git): %v", err)
	}
	u := baseUpstream(t)
	cgiHandler := &cgi.Handler{
		Path: backend,
		Env: []string{
			"GIT_PROJECT_ROOT=" + filepath.Dir(u.dir),
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_GLOBAL=/dev/null",
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != DefaultTokenUser || pass != "s3cret-token" {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		cgiHandler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	url := srv.URL + "/" + filepath.Base(u.dir)

	dir := filepath.Join(t.TempDir(), "co")
	opts := Options{URL: url, Branch: "master", Dir: dir, Auth: Auth{Token: "s3cret-token"}}
	tree := syncOK(t, opts)
	assertTree(t, tree, dir, u.dir, u.head("master"))
	gd := repoID(t, dir)

	u.write("new.txt", "x", 0o644)
	want := u.commit("new")
	tree = syncOK(t, opts)
	assertTree(t, tree, dir, u.dir, want)
	assertNotRecloned(t, gd, dir)
	assertNoSecretOnDisk(t, dir, "s3cret-token")
	assertPrivate(t, dir)

	// A token given as the URL's user name is not stored either, and the
	// repository stays the same repository (no re-clone).
	withUser := opts
	withUser.URL = strings.Replace(url, "http://", "http://tok3n-as-user@", 1)
	tree = syncOK(t, withUser)
	assertTree(t, tree, dir, u.dir, want)
	assertNotRecloned(t, gd, dir)
	assertNoSecretOnDisk(t, dir, "tok3n-as-user")

	bad := opts
	bad.Auth.Token = "wrong"
	_, err := Sync(context.Background(), bad)
	if err == nil || !strings.Contains(err.Error(), "fetch origin master: authentication required") {
		t.Fatalf("Sync with a wrong token: error = %v, want an authentication error from the fetch", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error leaks the token: %v", err)
	}
	assertTree(t, nil, dir, u.dir, want)
}

// TestSyncOverSSH serves an upstream over a real SSH server on 127.0.0.1 that
// accepts one client key and runs git-upload-pack.
func TestSyncOverSSH(t *testing.T) {
	t.Parallel()
	keys := t.TempDir()
	keyFile, clientPub, _ := newKey(t, keys, "id", "")
	_, _, hostSigner := newKey(t, keys, "host", "")
	_, otherHost, _ := newKey(t, keys, "otherhost", "")
	strangerFile, _, _ := newKey(t, keys, "stranger", "")
	upload, err := exec.LookPath("git-upload-pack")
	if err != nil {
		t.Fatalf("git-upload-pack not on PATH (part of git): %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &gliderssh.Server{
		Handler: func(s gliderssh.Session) {
			cmd := s.Command()
			if len(cmd) != 2 || cmd[0] != "git-upload-pack" {
				fmt.Fprintf(s.Stderr(), "unsupported command %q\n", s.RawCommand())
				_ = s.Exit(1)
				return
			}
			c := exec.Command(upload, cmd[1])
			c.Stdin, c.Stdout, c.Stderr = s, s, s.Stderr()
			code := 0
			if err := c.Run(); err != nil {
				code = 1
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				}
			}
			_ = s.Exit(code)
		},
		PublicKeyHandler: func(_ gliderssh.Context, key gliderssh.PublicKey) bool {
			return gliderssh.KeysEqual(key, clientPub)
		},
	}
	srv.AddHostKey(hostSigner)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	addr := ln.Addr().String()
	knownHosts := writeKnownHosts(t, t.TempDir(), addr, hostSigner.PublicKey())
	u := baseUpstream(t)
	url := "ssh://git@" + addr + u.dir

	dir := filepath.Join(t.TempDir(), "co")
	opts := Options{URL: url, Branch: "master", Dir: dir, Auth: Auth{SSHKeyFile: keyFile, KnownHostsFile: knownHosts}}
	tree := syncOK(t, opts)
	assertTree(t, tree, dir, u.dir, u.head("master"))
	gd := repoID(t, dir)

	u.write("new.txt", "x", 0o644)
	want := u.commit("new")
	tree = syncOK(t, opts)
	assertTree(t, tree, dir, u.dir, want)
	assertNotRecloned(t, gd, dir)

	t.Run("unknown host key", func(t *testing.T) {
		bad := opts
		bad.Auth.KnownHostsFile = writeKnownHosts(t, t.TempDir(), addr, otherHost)
		if _, err := Sync(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "knownhosts: key mismatch") {
			t.Fatalf("Sync against an unknown host key: error = %v, want a host key mismatch", err)
		}
		assertTree(t, nil, dir, u.dir, want)
	})
	t.Run("client key refused", func(t *testing.T) {
		bad := opts
		bad.Auth.SSHKeyFile = strangerFile
		if _, err := Sync(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
			t.Fatalf("Sync with a refused key: error = %v, want an authentication error", err)
		}
		assertTree(t, nil, dir, u.dir, want)
	})
}

// assertNoSecretOnDisk fails if secret appears in any file under dir (the
// checkout's .git/config in particular).
func assertNoSecretOnDisk(t *testing.T, dir, secret string) {
	t.Helper()
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), secret) {
			t.Errorf("secret written to %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
