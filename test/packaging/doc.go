// Package packaging holds the test of chartsync's Debian package and systemd
// units. It has no code of its own: packaging_test.go builds the package
// with `make deb` from a copy of the tree, installs, upgrades, removes and
// purges it in a throwaway root (the host's /usr, /etc and /var behind
// overlayfs in a private mount namespace, entered with chroot), verifies the
// units with systemd-analyze and runs lintian on the .deb.
//
// The test needs root (mounts and chroot), dpkg-buildpackage, debhelper,
// lintian, systemd-analyze, unshare and adduser; it fails, never skips, when
// one is missing (scripts/install-tools.sh installs them).
package packaging
