package packaging

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chartsync/chartsync/internal/testenv"
)

// upgradeSuffix turns the packaged upstream version into a higher one for
// the upgrade build: 0.1.0 becomes 0.1.0+upgradetest, which dpkg sorts after
// 0.1.0 and which `chartsync version` prints, so the test sees the new binary.
const upgradeSuffix = "+upgradetest"

// units are the systemd units the package installs, as in contrib/systemd.
var units = []string{"chartsync.service", "chartsync-once.service", "chartsync.timer"}

// conffiles are the package's configuration files, kept on upgrade.
var conffiles = []string{"/etc/chartsync/chartsync.toml", "/etc/default/chartsync"}

// TestDebianPackage builds the package twice (the tree as it is, and a copy
// with a higher version), then installs, upgrades, removes and purges it in
// a throwaway root, checking at each step what docs/install.md promises.
func TestDebianPackage(t *testing.T) {
	requireRootAndTools(t)
	src := moduleRoot(t)
	work := t.TempDir()

	version := run(t, src, "dpkg-parsechangelog", "-l", "debian/changelog", "-S", "Version")
	upstream, _, ok := cutLast(version, "-")
	if !ok {
		t.Fatalf("debian/changelog version %q has no Debian revision", version)
	}
	upVersion := upstream + upgradeSuffix + "-1"
	if out, err := exec.Command("dpkg", "--compare-versions", upVersion, "gt", version).CombinedOutput(); err != nil {
		t.Fatalf("upgrade version %s does not sort above %s: %v %s", upVersion, version, err, out)
	}

	deb1 := buildDeb(t, src, filepath.Join(work, "v1"), "")
	deb2 := buildDeb(t, src, filepath.Join(work, "v2"), upVersion)

	t.Run("lintian", func(t *testing.T) { checkLintian(t, deb1) })
	t.Run("control", func(t *testing.T) { checkControl(t, deb1) })

	r := newRoot(t, filepath.Join(work, "root"))
	r.addFile(t, deb1, "v1.deb")
	r.addFile(t, deb2, "v2.deb")
	for _, u := range units {
		r.addFile(t, filepath.Join(src, "contrib", "systemd", u), filepath.Join("units", u))
	}
	r.mustSh(t, "start from a root without chartsync", `
		if dpkg-query -W chartsync >/dev/null 2>&1; then dpkg --purge chartsync; fi
		if getent passwd chartsync >/dev/null; then userdel chartsync; fi
		if getent group chartsync >/dev/null; then groupdel chartsync; fi
		rm -rf /var/lib/chartsync /etc/chartsync /etc/default/chartsync`)

	steps := []struct {
		name string
		test func(t *testing.T)
	}{
		{"install", func(t *testing.T) { testInstall(t, r, upstream) }},
		{"units", func(t *testing.T) { testUnits(t, r) }},
		{"upgrade keeps edited conffiles", func(t *testing.T) { testUpgrade(t, r, upVersion) }},
		{"remove keeps config and state", func(t *testing.T) { testRemove(t, r) }},
		{"purge removes config and state", func(t *testing.T) { testPurge(t, r) }},
	}
	for _, s := range steps {
		// Each step starts from the state the previous one left.
		if !t.Run(s.name, s.test) {
			t.Fatalf("step %q failed; later steps depend on it", s.name)
		}
	}
}

func testInstall(t *testing.T, r *root, upstream string) {
	r.mustSh(t, "dpkg -i v1", "dpkg -i /pkgs/v1.deb")
	r.expectFiles(t, []wantFile{
		{"/usr/bin/chartsync", "regular file", "root:root", "755"},
		{"/usr/libexec/chartsync/chartsync-lint", "regular file", "root:root", "755"},
		{"/etc/chartsync/chartsync.toml", "regular file", "root:root", "644"},
		{"/etc/default/chartsync", "regular file", "root:root", "600"},
		{"/lib/systemd/system/chartsync.service", "regular file", "root:root", "644"},
		{"/lib/systemd/system/chartsync-once.service", "regular file", "root:root", "644"},
		{"/lib/systemd/system/chartsync.timer", "regular file", "root:root", "644"},
		{"/usr/share/man/man1/chartsync.1.gz", "regular file", "root:root", "644"},
		{"/usr/share/doc/chartsync/copyright", "regular file", "root:root", "644"},
		{"/usr/share/doc/chartsync/install.md.gz", "regular file", "root:root", "644"},
		{"/var/lib/chartsync", "directory", "chartsync:chartsync", "750"},
		// Nothing is enabled on installation.
		{"/etc/systemd/system/multi-user.target.wants/chartsync.service", "absent", "", ""},
		{"/etc/systemd/system/timers.target.wants/chartsync.timer", "absent", "", ""},
	})

	// The system user and group.
	pw := strings.Split(r.mustSh(t, "getent passwd", "getent passwd chartsync"), ":")
	if len(pw) != 7 {
		t.Fatalf("getent passwd chartsync: %q", pw)
	}
	uid, _ := strconv.Atoi(pw[2])
	if uid <= 0 || uid >= 1000 || pw[5] != "/var/lib/chartsync" || pw[6] != "/usr/sbin/nologin" {
		t.Errorf("chartsync user = %q, want a system uid (1..999), home /var/lib/chartsync, shell /usr/sbin/nologin", pw)
	}
	gr := strings.Split(r.mustSh(t, "getent group", "getent group chartsync"), ":")
	if len(gr) < 3 || gr[2] != pw[3] {
		t.Errorf("chartsync group = %q, want the user's primary group (gid %s)", gr, pw[3])
	}

	// dpkg knows the conffiles.
	got := r.mustSh(t, "dpkg-query conffiles", "dpkg-query -W -f='${Conffiles}' chartsync")
	for _, c := range conffiles {
		if !slices.Contains(strings.Fields(got), c) {
			t.Errorf("installed conffiles = %q, missing %s", got, c)
		}
	}

	// The packaged config validates, read by the service user from the
	// path the units use, and from the default path.
	r.mustSh(t, "check-config as chartsync",
		"runuser -u chartsync -- /usr/bin/chartsync check-config --config /etc/chartsync/chartsync.toml")
	r.mustSh(t, "check-config, default path", "chartsync check-config")

	if out := r.mustSh(t, "chartsync version", "chartsync version"); !strings.Contains(out, upstream) {
		t.Errorf("chartsync version = %q, want it to name %s", out, upstream)
	}
}

func testUnits(t *testing.T, r *root) {
	var paths []string
	for _, u := range units {
		// The installed units are contrib/systemd's, byte for byte.
		r.mustSh(t, "compare "+u, fmt.Sprintf("cmp /pkgs/units/%s /lib/systemd/system/%s", u, u))
		paths = append(paths, "/lib/systemd/system/"+u)
	}
	// verify needs the ExecStart binaries, hence inside the root. It warns
	// (exit 0) about unknown keys: any output is a failure.
	if out := r.mustSh(t, "systemd-analyze verify", "systemd-analyze verify "+strings.Join(paths, " ")+" 2>&1"); out != "" {
		t.Errorf("systemd-analyze verify: %s", out)
	}
	exposure := regexp.MustCompile(`Overall exposure level for (\S+): ([0-9.]+)`)
	for _, u := range []string{"chartsync.service", "chartsync-once.service"} {
		out := r.mustSh(t, "systemd-analyze security "+u,
			"cd /lib/systemd/system && systemd-analyze security --offline=true --no-pager "+u+" 2>&1")
		m := exposure.FindStringSubmatch(out)
		if m == nil {
			t.Errorf("systemd-analyze security %s: no overall exposure in\n%s", u, out)
			continue
		}
		level, _ := strconv.ParseFloat(m[2], 64)
		t.Logf("systemd-analyze security: %s exposure %s", u, m[2])
		if level > 2.0 {
			t.Errorf("%s exposure level %s, want at most 2.0 (hardening lost?)\n%s", u, m[2], out)
		}
	}
}

func testUpgrade(t *testing.T, r *root, upVersion string) {
	r.mustSh(t, "edit conffiles and leave state", `
		sed -i 's/^schedule = .*/schedule = "@every 5m" # edited by the packaging test/' /etc/chartsync/chartsync.toml
		grep -q 'edited by the packaging test' /etc/chartsync/chartsync.toml
		echo 'AWS_REGION=packaging-test-1' >> /etc/default/chartsync
		runuser -u chartsync -- /bin/sh -c 'echo state > /var/lib/chartsync/marker'`)
	r.mustSh(t, "dpkg -i v2", "dpkg -i /pkgs/v2.deb")

	if got := r.mustSh(t, "installed version", "dpkg-query -W -f='${Version}' chartsync"); got != upVersion {
		t.Errorf("installed version %q, want %q", got, upVersion)
	}
	upstream, _, _ := cutLast(upVersion, "-")
	if out := r.mustSh(t, "chartsync version", "chartsync version"); !strings.Contains(out, upstream) {
		t.Errorf("after upgrade chartsync version = %q, want %s", out, upstream)
	}
	r.mustSh(t, "edits kept", `
		grep -q 'edited by the packaging test' /etc/chartsync/chartsync.toml
		grep -q '^AWS_REGION=packaging-test-1$' /etc/default/chartsync`)
	r.mustSh(t, "edited config still validates",
		"runuser -u chartsync -- /usr/bin/chartsync check-config --config /etc/chartsync/chartsync.toml")
	r.expectFiles(t, []wantFile{
		{"/etc/default/chartsync", "regular file", "root:root", "600"},
		{"/var/lib/chartsync", "directory", "chartsync:chartsync", "750"},
		{"/var/lib/chartsync/marker", "regular file", "chartsync:chartsync", "644"},
		// Unchanged packaged conffiles: dpkg keeps the edit without asking.
		{"/etc/chartsync/chartsync.toml.dpkg-dist", "absent", "", ""},
		{"/etc/chartsync/chartsync.toml.dpkg-new", "absent", "", ""},
	})

	// Both run modes enabled (as an admin would, with systemctl): they
	// conflict and the daemon would not stay up at boot. postinst says so
	// (issue 13 point 6).
	r.mustSh(t, "enable both modes", `
		systemctl enable chartsync.timer chartsync.service 2>&1
		test -L /etc/systemd/system/timers.target.wants/chartsync.timer
		test -L /etc/systemd/system/multi-user.target.wants/chartsync.service`)
	out := r.mustSh(t, "reconfigure with both enabled", "dpkg -i /pkgs/v2.deb 2>&1")
	if !strings.Contains(out, "chartsync.timer and chartsync.service are both enabled") {
		dbg, _ := r.sh(`ls -l /etc/systemd/system/*.wants/ 2>&1 || true`)
		t.Errorf("postinst does not warn with both modes enabled:\n%s\nlinks after dpkg -i:\n%s", out, dbg)
	}
	out = r.mustSh(t, "reconfigure with one mode enabled", `
		systemctl disable chartsync.service 2>&1
		dpkg -i /pkgs/v2.deb 2>&1
		systemctl disable chartsync.timer 2>&1`)
	if strings.Contains(out, "both enabled") {
		t.Errorf("postinst warns with one mode enabled:\n%s", out)
	}
}

func testRemove(t *testing.T, r *root) {
	r.mustSh(t, "dpkg --remove", "dpkg --remove chartsync")
	if got := r.mustSh(t, "status", "dpkg-query -W -f='${Status}' chartsync"); got != "deinstall ok config-files" {
		t.Errorf("status after remove = %q, want config-files", got)
	}
	r.expectFiles(t, []wantFile{
		{"/usr/bin/chartsync", "absent", "", ""},
		{"/usr/libexec/chartsync", "absent", "", ""},
		{"/lib/systemd/system/chartsync.service", "absent", "", ""},
		{"/etc/chartsync/chartsync.toml", "regular file", "root:root", "644"},
		{"/etc/default/chartsync", "regular file", "root:root", "600"},
		{"/var/lib/chartsync/marker", "regular file", "chartsync:chartsync", "644"},
	})
}

func testPurge(t *testing.T, r *root) {
	// Timer mode's metrics files: the default path, and another one that
	// `run --once` recorded in the state directory. Purge removes both, so
	// that node_exporter stops serving a dead publisher's metrics.
	r.mustSh(t, "textfiles", "mkdir -p /var/lib/prometheus/node-exporter && "+
		"echo 'chartsync_build_info 1' > /var/lib/prometheus/node-exporter/chartsync.prom && "+
		"echo 'chartsync_build_info 1' > /var/lib/prometheus/node-exporter/site-chartsync.prom && "+
		"echo /var/lib/prometheus/node-exporter/site-chartsync.prom > /var/lib/chartsync/metrics-textfile && "+
		"echo 'node_x 1' > /var/lib/prometheus/node-exporter/other.prom")
	r.mustSh(t, "dpkg --purge", "dpkg --purge chartsync")
	r.expectFiles(t, []wantFile{
		{"/var/lib/prometheus/node-exporter/chartsync.prom", "absent", "", ""},
		{"/var/lib/prometheus/node-exporter/site-chartsync.prom", "absent", "", ""},
		{"/var/lib/prometheus/node-exporter/other.prom", "regular file", "root:root", "644"},
		{"/var/lib/chartsync", "absent", "", ""},
		{"/etc/chartsync", "absent", "", ""},
		{"/etc/default/chartsync", "absent", "", ""},
	})
	// Debian leaves system users in place (docs/install.md says so).
	r.mustSh(t, "user kept", "getent passwd chartsync && getent group chartsync")
}

// checkLintian runs lintian on the .deb: no error and no warning may be
// left after debian/chartsync.lintian-overrides. The full output is logged.
func checkLintian(t *testing.T, deb string) {
	start := time.Now()
	out, err := exec.Command("lintian", "--fail-on", "error,warning", "--display-info", deb).CombinedOutput()
	t.Logf("lintian (%s):\n%s", time.Since(start).Round(time.Second), out)
	if err != nil {
		t.Errorf("lintian found errors or warnings: %v", err)
	}
}

// checkControl checks the package's metadata without installing it.
func checkControl(t *testing.T, deb string) {
	got := strings.Fields(run(t, "", "dpkg-deb", "--info", deb, "conffiles"))
	slices.Sort(got)
	want := slices.Sorted(slices.Values(conffiles))
	if !slices.Equal(got, want) {
		t.Errorf("conffiles = %q, want %q", got, want)
	}
	if dep := run(t, "", "dpkg-deb", "--field", deb, "Depends"); !strings.Contains(dep, "adduser") {
		t.Errorf("Depends = %q, want adduser (postinst uses it)", dep)
	}
}

// buildDeb copies the tree at src into dir/chartsync, gives it the Debian
// version newVersion when not empty, runs `make deb` and returns the .deb.
func buildDeb(t *testing.T, src, dir, newVersion string) string {
	t.Helper()
	tree := filepath.Join(dir, "chartsync")
	if err := copyTree(src, tree); err != nil {
		t.Fatalf("copy source tree: %v", err)
	}
	if newVersion != "" {
		prependChangelog(t, filepath.Join(tree, "debian", "changelog"), newVersion)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "make", "deb")
	cmd.Dir = tree
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make deb in %s: %v\n%s", tree, err, tail(out, 60))
	}
	t.Logf("make deb %s: %s", filepath.Base(dir), time.Since(start).Round(time.Second))
	debs, _ := filepath.Glob(filepath.Join(tree, "dist", "chartsync_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb left %d packages in dist/, want 1: %q", len(debs), debs)
	}
	return debs[0]
}

// prependChangelog adds a changelog entry for version, as dch would.
func prependChangelog(t *testing.T, path, version string) {
	t.Helper()
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	entry := fmt.Sprintf("chartsync (%s) unstable; urgency=medium\n\n  * Upgrade build for the packaging test.\n\n -- chartsync packaging test <root@localhost>  %s\n\n",
		version, time.Now().UTC().Format(time.RFC1123Z))
	if err := os.WriteFile(path, append([]byte(entry), old...), 0o644); err != nil {
		t.Fatal(err)
	}
}

// skipInCopy says which paths of the tree `make deb` neither needs nor may
// see: VCS data, tools, build output (including the binary a plain `go
// build` leaves at the top) and leftovers of an in-tree package build.
func skipInCopy(rel string) bool {
	switch rel {
	case ".git", ".tools", "bin", "dist", "chartsync",
		"debian/chartsync", "debian/.debhelper", "debian/.cache",
		"debian/files", "debian/debhelper-build-stamp":
		return true
	}
	if strings.HasPrefix(rel, "obj-") {
		return true
	}
	if strings.HasPrefix(rel, "debian/") {
		return strings.HasSuffix(rel, ".substvars") || strings.HasSuffix(rel, ".debhelper") ||
			strings.HasSuffix(rel, ".debhelper.log")
	}
	return false
}

// copyTree copies the working tree at src to dst (files, directories and
// symlinks), so that the build sees uncommitted work and never writes into
// the shared tree. Files that vanish during the copy are skipped.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if rel != "." && skipInCopy(filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			err := testenv.CopyFile(path, target, info.Mode().Perm())
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		return nil
	})
}

// root is a throwaway Debian system for dpkg and maintainer scripts: the
// host's /usr, /etc and /var (and /bin, /lib... where they are not symlinks
// into /usr) as read-only lower layers of overlayfs mounts whose writable
// layers live in the test's temporary directory, plus fresh /tmp and /run,
// the host's /dev and a new /proc. The mounts are made in a private mount
// namespace for each command (unshare --mount) and vanish when it exits, so
// the host is never written to and a killed test leaves no mounts behind.
// Files at the top of the root itself (/pkgs) persist between commands, as
// do the overlays' upper layers.
type root struct {
	dir   string // the chroot
	enter string // the script that mounts and enters it
}

// wantFile is one expected path in the root: kind is stat's %F ("regular
// file", "directory") or "absent"; owner is user:group; mode is octal.
type wantFile struct {
	path, kind, owner, mode string
}

func newRoot(t *testing.T, base string) *root {
	t.Helper()
	r := &root{dir: filepath.Join(base, "root"), enter: filepath.Join(base, "enter.sh")}
	for _, host := range []string{"/usr", "/etc", "/var"} {
		if strings.HasPrefix(base, host+"/") {
			t.Fatalf("the test root %s lies under %s, which it overlays: set TMPDIR elsewhere", base, host)
		}
	}
	layers := []string{"usr", "etc", "var"}
	for _, d := range []string{"tmp", "run", "dev", "proc", "pkgs"} {
		must(t, os.MkdirAll(filepath.Join(r.dir, d), 0o755))
	}
	for _, top := range []string{"bin", "sbin", "lib", "lib32", "lib64", "libx32"} {
		fi, err := os.Lstat("/" + top)
		switch {
		case err != nil:
			continue
		case fi.Mode()&fs.ModeSymlink != 0: // merged /usr
			link, err := os.Readlink("/" + top)
			must(t, err)
			must(t, os.Symlink(link, filepath.Join(r.dir, top)))
		case fi.IsDir():
			layers = append(layers, top)
		}
	}
	var script strings.Builder
	script.WriteString("# enter.sh ROOT BASE SCRIPT: mount the root's layers, then run SCRIPT in it.\nR=$1 B=$2\n")
	for _, l := range layers {
		for _, d := range []string{"upper", "work"} {
			must(t, os.MkdirAll(filepath.Join(base, d, l), 0o755))
		}
		must(t, os.MkdirAll(filepath.Join(r.dir, l), 0o755))
		fmt.Fprintf(&script, "mount -t overlay overlay -o lowerdir=/%[1]s,upperdir=$B/upper/%[1]s,workdir=$B/work/%[1]s $R/%[1]s\n", l)
	}
	script.WriteString(`mount -t proc proc $R/proc
mount --rbind /dev $R/dev
mount -t tmpfs tmpfs $R/tmp
mount -t tmpfs tmpfs $R/run
exec chroot $R /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
	DEBIAN_FRONTEND=noninteractive /bin/sh -eu -c "$3"
`)
	must(t, os.WriteFile(r.enter, []byte(script.String()), 0o755))
	return r
}

// addFile copies a host file into the root at /pkgs/name.
func (r *root) addFile(t *testing.T, src, name string) {
	t.Helper()
	dst := filepath.Join(r.dir, "pkgs", name)
	must(t, os.MkdirAll(filepath.Dir(dst), 0o755))
	must(t, testenv.CopyFile(src, dst, 0o644))
}

// sh runs script with /bin/sh -eu inside the root, stdin /dev/null, and
// returns its output (stdout and stderr) without surrounding white space.
func (r *root) sh(script string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private", "--",
		"/bin/sh", "-eu", r.enter, r.dir, filepath.Dir(r.enter), script)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (r *root) mustSh(t *testing.T, what, script string) string {
	t.Helper()
	out, err := r.sh(script)
	if err != nil {
		t.Fatalf("%s: %v\nscript: %s\noutput:\n%s", what, err, strings.TrimSpace(script), out)
	}
	return out
}

// expectFiles stats each path inside the root and reports every mismatch.
func (r *root) expectFiles(t *testing.T, want []wantFile) {
	t.Helper()
	var script strings.Builder
	for _, w := range want {
		fmt.Fprintf(&script, "if [ -e '%[1]s' ] || [ -L '%[1]s' ]; then stat -c '%%n|%%F|%%U:%%G|%%a' '%[1]s'; else echo '%[1]s|absent||'; fi\n", w.path)
	}
	got := map[string]wantFile{}
	for _, line := range strings.Split(r.mustSh(t, "stat", script.String()), "\n") {
		f := strings.Split(line, "|")
		if len(f) == 4 {
			got[f[0]] = wantFile{f[0], f[1], f[2], f[3]}
		}
	}
	for _, w := range want {
		if g := got[w.path]; g != w {
			t.Errorf("%s: got %s %s %s, want %s %s %s", w.path, g.kind, g.owner, g.mode, w.kind, w.owner, w.mode)
		}
	}
}

// requireRootAndTools fails the test, naming what to install, when the
// machine cannot build or install the package.
func requireRootAndTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "the packaging test needs root: it mounts overlays and chroots to install the package")
	}
	tools := map[string]string{
		"dpkg-buildpackage": "dpkg-dev", "dpkg-parsechangelog": "dpkg-dev", "dpkg-deb": "dpkg",
		"dh": "debhelper", "lintian": "lintian", "systemd-analyze": "systemd",
		"unshare": "util-linux", "chroot": "coreutils", "make": "make", "adduser": "adduser",
	}
	var missing []string
	for tool, pkg := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err := os.Stat("/usr/sbin/" + tool); err != nil {
				missing = append(missing, fmt.Sprintf("%s (Debian package %s)", tool, pkg))
			}
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		testenv.Missing(t, "missing tools: %s", strings.Join(missing, ", "))
	}
}

// moduleRoot is the directory holding go.mod, above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	must(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// run runs a host command in dir and returns its trimmed stdout.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

func cutLast(s, sep string) (before, after string, found bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// tail returns the last n lines of out.
func tail(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
