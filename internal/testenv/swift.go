package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// SwiftServer is a single-node OpenStack Swift ("Swift all in one") on
// 127.0.0.1: proxy, account, container and object servers from Debian's
// packages, one replica, tempauth with one user, memcached for tokens. All
// its configuration lives under Dir; /etc/swift is not read.
type SwiftServer struct {
	AuthURL string // v1 auth URL, e.g. "http://127.0.0.1:40123/auth/v1.0"
	User    string // "test:tester" (account "AUTH_test", reseller admin .admin)
	Key     string // "testing"
	Dir     string

	proxyURL string
	ports    swiftPorts
	procs    []*process // memcached first, then account, container, object, proxy
}

const (
	python3    = "/usr/bin/python3" // the python3 first on PATH may not import swift
	swiftUser  = "test:tester"
	swiftKey   = "testing"
	swiftStart = 60 * time.Second // generous: python start-up on a busy 2-core machine
)

var (
	sharedSwift     *SwiftServer
	sharedSwiftErr  error
	sharedSwiftOnce sync.Once
)

// Swift returns the test binary's shared Swift server, starting it on first
// use (a few seconds), or fails t. The package's tests must run through Main
// (see the package comment). Use NewContainer for a container of the test's
// own.
func Swift(t testing.TB) *SwiftServer {
	t.Helper()
	requireMain(t)
	requireSwift(t)
	sharedSwiftOnce.Do(func() {
		dir, err := os.MkdirTemp("", "chartsync-swift-")
		if err != nil {
			sharedSwiftErr = err
			return
		}
		sharedSwift, sharedSwiftErr = startSwift(dir)
		onExit(func() {
			if sharedSwift != nil {
				sharedSwift.Stop()
			}
			os.RemoveAll(dir)
		})
	})
	if sharedSwiftErr != nil {
		t.Fatalf("testenv: start swift: %v", sharedSwiftErr)
	}
	return sharedSwift
}

// NewSwift starts a Swift server that belongs to t and is stopped at t's
// cleanup, for tests that Stop and Start it. It does not need Main.
func NewSwift(t testing.TB) *SwiftServer {
	t.Helper()
	requireSwift(t)
	s, err := startSwift(t.TempDir())
	if err != nil {
		t.Fatalf("testenv: start swift: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

func requireSwift(t testing.TB) {
	t.Helper()
	requireFile(t, python3, "python3")
	requireFile(t, "/usr/bin/swift-ring-builder", "swift")
	for _, server := range []string{"proxy", "account", "container", "object"} {
		requireFile(t, "/usr/bin/swift-"+server+"-server", "swift-"+server)
	}
	if _, err := exec.LookPath("memcached"); err != nil {
		t.Fatal("testenv: memcached not found on PATH (Debian package memcached): run scripts/install-tools.sh")
	}
}

// swiftPorts are the ports of one server's processes.
type swiftPorts struct {
	proxy, account, container, object, memcached int
}

func startSwift(dir string) (*SwiftServer, error) {
	var ports swiftPorts
	for _, p := range []*int{&ports.proxy, &ports.account, &ports.container, &ports.object, &ports.memcached} {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		*p = port
	}
	if err := os.MkdirAll(filepath.Join(dir, "srv", "d1"), 0o755); err != nil {
		return nil, err
	}
	if err := writeSwiftConfigs(dir, ports); err != nil {
		return nil, err
	}
	if err := buildRings(dir, ports); err != nil {
		return nil, err
	}
	memcached, _ := exec.LookPath("memcached")
	s := &SwiftServer{
		AuthURL:  fmt.Sprintf("http://127.0.0.1:%d/auth/v1.0", ports.proxy),
		User:     swiftUser,
		Key:      swiftKey,
		Dir:      dir,
		proxyURL: fmt.Sprintf("http://127.0.0.1:%d", ports.proxy),
		ports:    ports,
	}
	s.procs = append(s.procs, &process{
		name: "memcached",
		path: memcached,
		args: []string{"-l", "127.0.0.1", "-p", strconv.Itoa(ports.memcached), "-U", "0", "-u", currentUser(), "-m", "16"},
		log:  filepath.Join(dir, "memcached.log"),
	})
	for _, server := range []string{"account", "container", "object", "proxy"} {
		s.procs = append(s.procs, &process{
			name: "swift-" + server + "-server",
			path: python3,
			args: []string{"/usr/bin/swift-" + server + "-server", filepath.Join(dir, server+"-server.conf")},
			log:  filepath.Join(dir, server+"-server.log"),
		})
	}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// start starts every process and waits until each server's /healthcheck
// answers and tempauth issues a token.
func (s *SwiftServer) start() error {
	for _, p := range s.procs {
		if err := p.start(); err != nil {
			s.Stop()
			return err
		}
	}
	ports := []int{s.ports.account, s.ports.container, s.ports.object, s.ports.proxy}
	var wg sync.WaitGroup
	errs := make([]error, len(ports))
	for i, p := range s.procs[1:] {
		wg.Go(func() {
			errs[i] = waitHealthy(fmt.Sprintf("http://127.0.0.1:%d/healthcheck", ports[i]), p, swiftStart)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.Stop()
		return err
	}
	// The proxy is healthy before it can reach memcached, and after a
	// restart the account and container servers may refuse the first
	// requests: wait until a token works for a container write.
	deadline := time.Now().Add(swiftStart)
	for {
		err := s.ready(context.Background())
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("tempauth: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop kills every process of the server (SIGKILL, like a crash). On the
// shared server this disturbs every test using it: fault tests use NewSwift.
func (s *SwiftServer) Stop() {
	for i := len(s.procs) - 1; i >= 0; i-- {
		s.procs[i].stop()
	}
}

// Start starts a stopped server again on the same ports and data, and waits
// until it serves, or fails t. Tokens issued before Stop are lost with
// memcached: clients authenticate again.
func (s *SwiftServer) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("testenv: restart swift: %v", err)
	}
}

// String describes the server for test logs.
func (s *SwiftServer) String() string {
	return fmt.Sprintf("swift at %s (dir %s)", s.proxyURL, s.Dir)
}

// NewContainer creates an empty container with a name unique in the test
// binary and returns its name, or fails t.
func (s *SwiftServer) NewContainer(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := uniqueName("t")
	storageURL, token, err := s.auth(ctx)
	if err != nil {
		t.Fatalf("testenv: swift auth: %v", err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, storageURL+"/"+name, nil)
	req.Header.Set("X-Auth-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("testenv: create container %s: %v", name, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusAccepted {
		t.Fatalf("testenv: create container %s: %s", name, resp.Status)
	}
	return name
}

// ready authenticates and creates (or finds) a probe container: the whole
// path from the proxy to the container server answers.
func (s *SwiftServer) ready(ctx context.Context) error {
	storageURL, token, err := s.auth(ctx)
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, storageURL+"/testenv-ready", nil)
	req.Header.Set("X-Auth-Token", token)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("probe container: %s", resp.Status)
	}
	return nil
}

// auth gets a storage URL and token from tempauth.
func (s *SwiftServer) auth(ctx context.Context) (storageURL, token string, err error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.AuthURL, nil)
	req.Header.Set("X-Auth-User", s.User)
	req.Header.Set("X-Auth-Key", s.Key)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("auth: %s", resp.Status)
	}
	storageURL, token = resp.Header.Get("X-Storage-Url"), resp.Header.Get("X-Auth-Token")
	if storageURL == "" || token == "" {
		return "", "", errors.New("auth: no storage url or token in the answer")
	}
	return storageURL, token, nil
}

// ringScript builds the account, container and object rings with one
// replica and one device (d1 under Dir/srv), with the same RingBuilder that
// swift-ring-builder drives ("create 4 1 1", "add r1z1-127.0.0.1:PORT/d1 1",
// "rebalance"); one python start-up instead of nine. Arguments: swift_dir,
// then NAME=PORT for each ring.
const ringScript = `
import os, sys
from swift.common.ring import RingBuilder
swift_dir = sys.argv[1]
for arg in sys.argv[2:]:
    name, port = arg.split("=")
    builder = RingBuilder(4, 1, 1)
    builder.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1",
                     "port": int(port), "device": "d1", "weight": 1})
    builder.rebalance()
    builder.save(os.path.join(swift_dir, name + ".builder"))
    builder.get_ring().save(os.path.join(swift_dir, name + ".ring.gz"))
`

// buildRings writes the rings for ports into dir.
func buildRings(dir string, ports swiftPorts) error {
	cmd := exec.Command(python3, "-c", ringScript, dir,
		fmt.Sprintf("account=%d", ports.account),
		fmt.Sprintf("container=%d", ports.container),
		fmt.Sprintf("object=%d", ports.object))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build rings: %v\n%s", err, out)
	}
	return nil
}

// currentUser names the user the tests run as: Swift's servers switch to
// their configured user, and memcached needs one when started by root.
func currentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "root"
}

// writeSwiftConfigs writes swift.conf and the four servers' configs into
// dir. Every config sets swift_dir, so nothing under /etc/swift is read.
func writeSwiftConfigs(dir string, ports swiftPorts) error {
	files := map[string]string{
		"swift.conf": `[swift-hash]
swift_hash_path_suffix = chartsync-test
swift_hash_path_prefix = chartsync-test

[storage-policy:0]
name = Policy-0
default = yes
`,
		"proxy-server.conf": fmt.Sprintf(`[DEFAULT]
bind_ip = 127.0.0.1
bind_port = %d
workers = 0
user = %s
swift_dir = %s
log_level = WARNING

[pipeline:main]
# copy and versioned_writes are named so that versioned_writes can be
# configured (Swift adds both by default, versioned_writes disabled);
# containers may then keep overwritten objects (X-History-Location).
pipeline = catch_errors healthcheck cache tempauth copy versioned_writes proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true
# A busy 2-core test machine: the defaults (0.5 s to connect to a backend)
# turn load into 503s that no production cluster of this size would see.
conn_timeout = 5
node_timeout = 60

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = %s .admin

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:%d

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:copy]
use = egg:swift#copy

[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
`, ports.proxy, currentUser(), dir, swiftKey, ports.memcached),
	}
	for server, port := range map[string]int{"account": ports.account, "container": ports.container, "object": ports.object} {
		files[server+"-server.conf"] = fmt.Sprintf(`[DEFAULT]
bind_ip = 127.0.0.1
bind_port = %d
workers = 0
user = %s
swift_dir = %s
devices = %s
mount_check = false
disable_fallocate = true
log_level = WARNING

[pipeline:main]
pipeline = healthcheck %s-server

[app:%s-server]
use = egg:swift#%s

[filter:healthcheck]
use = egg:swift#healthcheck
`, port, currentUser(), dir, filepath.Join(dir, "srv"), server, server, server)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}
