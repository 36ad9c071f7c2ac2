package swift

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chartsync/chartsync/internal/publisher/store"
	"github.com/chartsync/chartsync/internal/publisher/storetest"
	"github.com/chartsync/chartsync/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// newStore returns a store on a new container of srv, reached through
// authURL (srv.AuthURL, or a proxy's).
func newStore(t *testing.T, srv *testenv.SwiftServer, authURL, container string) *Store {
	t.Helper()
	if container == "" {
		container = srv.NewContainer(t)
	}
	s, err := New(t.Context(), Config{
		AuthURL:   authURL,
		User:      srv.User,
		Key:       srv.Key,
		Container: container,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.backoff = 10 * time.Millisecond
	return s
}

func TestConformance(t *testing.T) {
	srv := testenv.Swift(t)
	storetest.Run(t, func(t *testing.T) store.Store { return newStore(t, srv, srv.AuthURL, "") })
}

// TestRacingCreates shows what Swift's If-None-Match: * does under a race,
// and asserts only what it guarantees: every Create returns nil or
// ErrExist, at least one returns nil, the stored bytes are those of a
// Create that returned nil, and once the object is stored, later Creates
// get ErrExist. How many racers "won" is logged, not asserted: on Swift
// 2.30 it was anywhere from 1 to all of them.
func TestRacingCreates(t *testing.T) {
	srv := testenv.Swift(t)
	s := newStore(t, srv, srv.AuthURL, "")
	const rounds, racers = 3, 8
	for round := range rounds {
		key := fmt.Sprintf("race-%d.tgz", round)
		errs := make([]error, racers)
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() { errs[i] = s.Create(t.Context(), key, fmt.Appendf(nil, "racer %d", i)) })
		}
		wg.Wait()
		var winners []int
		for i, err := range errs {
			switch {
			case err == nil:
				winners = append(winners, i)
			case !errors.Is(err, store.ErrExist):
				t.Errorf("round %d racer %d: err = %v, want nil or ErrExist", round, i, err)
			}
		}
		if len(winners) == 0 {
			t.Fatalf("round %d: no racer won", round)
		}
		data, _, err := s.Get(t.Context(), key)
		if err != nil {
			t.Fatal(err)
		}
		var stored int
		if _, err := fmt.Sscanf(string(data), "racer %d", &stored); err != nil {
			t.Fatalf("stored bytes %q", data)
		}
		isWinner := false
		for _, w := range winners {
			isWinner = isWinner || w == stored
		}
		if !isWinner {
			t.Errorf("round %d: stored bytes are racer %d's, who was not told it won (%v)", round, stored, winners)
		}
		t.Logf("round %d: %d of %d racing Creates got nil; racer %d's bytes are stored", round, len(winners), racers, stored)
		if err := s.Create(t.Context(), key, []byte("late")); !errors.Is(err, store.ErrExist) {
			t.Errorf("round %d: Create after the race: err = %v, want ErrExist", round, err)
		}
	}
}

// TestReadyAuthenticates: every operation starts with ready, which
// authenticates a connection that is not, under the store's own lock. The
// client library reads its storage URL before it takes its lock, so that
// operations racing the first authentication could go out without one
// ("unsupported protocol scheme"; seen once in TestConformance's
// ConcurrentCreate, not reproducible at will).
func TestReadyAuthenticates(t *testing.T) {
	srv := testenv.Swift(t)
	s := newStore(t, srv, srv.AuthURL, "")
	if s.conn.Authenticated() {
		t.Fatal("a new store is authenticated before any operation")
	}
	if err := s.ready(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !s.conn.Authenticated() {
		t.Error("ready did not authenticate")
	}
}

// TestRacingReplaces shows the window between Replace's version check and
// its write: racers that start from the same version may all succeed.
// Guaranteed: nil or ErrConflict each, at least one nil, the stored bytes
// are a winner's.
func TestRacingReplaces(t *testing.T) {
	srv := testenv.Swift(t)
	s := newStore(t, srv, srv.AuthURL, "")
	v0, err := s.Replace(t.Context(), "index.yaml", []byte("base"), "")
	if err != nil {
		t.Fatal(err)
	}
	const racers = 8
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() { _, errs[i] = s.Replace(t.Context(), "index.yaml", fmt.Appendf(nil, "racer %d", i), v0) })
	}
	wg.Wait()
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("racer %d: err = %v, want nil or ErrConflict", i, err)
		}
	}
	if won == 0 {
		t.Fatal("no racer won")
	}
	t.Logf("%d of %d racing Replaces from one version got nil", won, racers)
}

func TestListPages(t *testing.T) {
	srv := testenv.Swift(t)
	s := newStore(t, srv, srv.AuthURL, "")
	var want []string
	for i := range 10 {
		key := fmt.Sprintf("repo/c-%02d.tgz", i)
		want = append(want, key)
		if err := s.Create(t.Context(), key, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Create(t.Context(), "zzz", []byte("x")); err != nil {
		t.Fatal(err)
	}
	// Partial last pages, full last pages, a single page.
	for _, size := range []int{3, 5, 10, 11} {
		s.pageSize = size
		got, err := s.List(t.Context(), "repo/")
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, o := range got {
			keys = append(keys, o.Key)
		}
		if !slices.Equal(keys, want) {
			t.Errorf("page size %d: List = %q, want %q", size, keys, want)
		}
	}
}

func TestMissingContainer(t *testing.T) {
	srv := testenv.Swift(t)
	s := newStore(t, srv, srv.AuthURL, "no-such-container")
	ctx := t.Context()
	if _, _, err := s.Get(ctx, "index.yaml"); err == nil || errors.Is(err, store.ErrNotExist) {
		t.Errorf("Get: err = %v, want an error that is not ErrNotExist", err)
	}
	if _, err := s.Replace(ctx, "index.yaml", []byte("x"), ""); err == nil || errors.Is(err, store.ErrNotExist) {
		t.Errorf("Replace: err = %v, want an error that is not ErrNotExist", err)
	}
	if err := s.Create(ctx, "a.tgz", []byte("x")); err == nil || errors.Is(err, store.ErrNotExist) {
		t.Errorf("Create: err = %v, want an error that is not ErrNotExist", err)
	}
	if _, err := s.List(ctx, ""); err == nil {
		t.Error("List of a missing container succeeded")
	}

	// CreateContainer creates it, and keeps an existing one as it is.
	for range 2 {
		created, err := New(ctx, Config{AuthURL: srv.AuthURL, User: srv.User, Key: srv.Key,
			Container: "created-by-new", CreateContainer: true})
		if err != nil {
			t.Fatalf("New with CreateContainer: %v", err)
		}
		if err := created.Create(ctx, "a.tgz", []byte("x")); err != nil && !errors.Is(err, store.ErrExist) {
			t.Fatalf("Create in the created container: %v", err)
		}
	}
}

func TestBadCredentials(t *testing.T) {
	srv := testenv.Swift(t)
	s, err := New(t.Context(), Config{AuthURL: srv.AuthURL, User: srv.User, Key: "wrong", Container: "c"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(t.Context(), "index.yaml"); err == nil || errors.Is(err, store.ErrNotExist) {
		t.Errorf("Get with a wrong key: err = %v, want an authorization error", err)
	}
}

// TestServerUnreachable checks that an unreachable server gives errors, not
// ErrNotExist, and that writes give up after the configured retries.
func TestServerUnreachable(t *testing.T) {
	srv := testenv.Swift(t)
	container := srv.NewContainer(t)
	var down atomic.Bool
	proxy := testenv.NewProxy(t, srv.AuthURL, func(*http.Request) testenv.Fault {
		if down.Load() {
			return testenv.CutBefore
		}
		return testenv.Pass
	})
	s := newStore(t, srv, proxy.URL+"/auth/v1.0", container)
	ctx := t.Context()
	if err := s.Create(ctx, "a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	if _, _, err := s.Get(ctx, "a"); err == nil || errors.Is(err, store.ErrNotExist) {
		t.Errorf("Get with the server unreachable: err = %v", err)
	}
	before := proxy.Count(http.MethodPut)
	if err := s.Create(ctx, "b", []byte("b")); err == nil || errors.Is(err, store.ErrExist) {
		t.Errorf("Create with the server unreachable: err = %v, want an error", err)
	}
	// Create's first request is the check of the final name: when it
	// fails, nothing is written.
	if got := proxy.Count(http.MethodPut) - before; got != 0 {
		t.Errorf("Create sent %d PUTs, want 0", got)
	}
	down.Store(false)
	if err := s.Create(ctx, "b", []byte("b")); err != nil {
		t.Errorf("Create once reachable again: %v", err)
	}
}

// TestFaults runs the shared fault tests of conditional writes whose
// outcome is unknown.
func TestFaults(t *testing.T) {
	srv := testenv.Swift(t)
	storetest.RunFaults(t, DefaultRetries+1, func(t *testing.T, fault func(*http.Request) testenv.Fault) (store.Store, *testenv.Proxy) {
		proxy := testenv.NewProxy(t, srv.AuthURL, fault)
		return newStore(t, srv, proxy.URL+"/auth/v1.0", ""), proxy
	})
}

func TestNewConfig(t *testing.T) {
	ok := Config{AuthURL: "http://127.0.0.1:1/auth/v1.0", User: "a:u", Key: "k", Container: "c"}
	tests := []struct {
		name    string
		edit    func(c *Config)
		wantErr string
	}{
		{"valid", func(*Config) {}, ""},
		{"no auth url", func(c *Config) { c.AuthURL = "" }, "auth url"},
		{"no container", func(c *Config) { c.Container = "" }, "container is required"},
		{"slash in container", func(c *Config) { c.Container = "a/b" }, "slash"},
		{"bad auth version", func(c *Config) { c.AuthVersion = 4 }, "auth version"},
		{"unparsed auth version", func(c *Config) { c.AuthVersion = -1 }, "auth version"},
		{"no user", func(c *Config) { c.User = "" }, "user"},
		{"application credential", func(c *Config) {
			c.User, c.Key, c.ApplicationCredentialID, c.ApplicationCredentialSecret = "", "", "id", "s"
		}, ""},
		{"endpoint type internalURL", func(c *Config) { c.EndpointType = "internalURL" }, ""},
		{"bad endpoint type", func(c *Config) { c.EndpointType = "private" }, "endpoint type"},
		{"bad retries", func(c *Config) { c.Retries = -2 }, "retries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			s, err := New(t.Context(), cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if s.String() != "swift://c" || s.Atomic() {
					t.Errorf("String() = %q, Atomic() = %v", s.String(), s.Atomic())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New: err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want Config
	}{
		{"empty", nil, Config{}},
		{
			"v1",
			map[string]string{"ST_AUTH": "http://p/auth/v1.0", "ST_USER": "a:u", "ST_KEY": "k"},
			Config{AuthURL: "http://p/auth/v1.0", AuthVersion: 1, User: "a:u", Key: "k"},
		},
		{
			"v1 with ST_AUTH_VERSION",
			map[string]string{"ST_AUTH": "http://k/v2.0", "ST_AUTH_VERSION": "2", "ST_USER": "u"},
			Config{AuthURL: "http://k/v2.0", AuthVersion: 2, User: "u"},
		},
		{
			"v3 password",
			map[string]string{
				"OS_AUTH_URL": "https://k:5000/v3", "OS_IDENTITY_API_VERSION": "3",
				"OS_USERNAME": "u", "OS_PASSWORD": "p", "OS_PROJECT_NAME": "proj",
				"OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "pd",
				"OS_REGION_NAME": "r1", "OS_INTERFACE": "internal",
				"ST_AUTH": "ignored", "ST_USER": "ignored",
			},
			Config{AuthURL: "https://k:5000/v3", AuthVersion: 3, User: "u", Key: "p", Project: "proj",
				Domain: "Default", ProjectDomain: "pd", Region: "r1", EndpointType: "internal"},
		},
		{
			"v3 ids",
			map[string]string{
				"OS_AUTH_URL": "https://k/v3", "OS_USER_ID": "uid", "OS_PROJECT_ID": "pid",
				"OS_USER_DOMAIN_ID": "did", "OS_PROJECT_DOMAIN_ID": "pdid",
			},
			Config{AuthURL: "https://k/v3", UserID: "uid", ProjectID: "pid", DomainID: "did", ProjectDomainID: "pdid"},
		},
		{
			"v2 tenant",
			map[string]string{"OS_AUTH_URL": "https://k/v2.0", "OS_IDENTITY_API_VERSION": "2.0",
				"OS_TENANT_NAME": "t", "OS_TENANT_ID": "tid", "OS_ENDPOINT_TYPE": "publicURL"},
			Config{AuthURL: "https://k/v2.0", AuthVersion: 2, Project: "t", ProjectID: "tid", EndpointType: "publicURL"},
		},
		{
			"application credential",
			map[string]string{"OS_AUTH_URL": "https://k/v3", "OS_APPLICATION_CREDENTIAL_ID": "id",
				"OS_APPLICATION_CREDENTIAL_NAME": "n", "OS_APPLICATION_CREDENTIAL_SECRET": "s"},
			Config{AuthURL: "https://k/v3", ApplicationCredentialID: "id", ApplicationCredentialName: "n",
				ApplicationCredentialSecret: "s"},
		},
		{
			"bad version",
			map[string]string{"OS_AUTH_URL": "https://k/v3", "OS_IDENTITY_API_VERSION": "three"},
			Config{AuthURL: "https://k/v3", AuthVersion: -1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ConfigFromEnv(func(k string) string { return tt.env[k] })
			if got != tt.want {
				t.Errorf("ConfigFromEnv =\n%+v, want\n%+v", got, tt.want)
			}
		})
	}
}
