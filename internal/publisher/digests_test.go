package publisher

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/chartsync/chartsync/internal/statefile"
)

var (
	sumA = strings.Repeat("0123456789abcdef", 4)
	sumB = strings.Repeat("fedcba9876543210", 4)
)

// digestWant is what a cache answers for key at version: the digest
// Lookup gives (empty for none) and the reason Refused gives.
type digestWant struct {
	key, version, sum, refused string
}

func checkDigests(t *testing.T, name string, c *DigestCache, wants []digestWant) {
	t.Helper()
	for _, w := range wants {
		if sum, ok := c.Lookup(w.key, w.version); ok != (w.sum != "") || ok && sum != w.sum {
			t.Errorf("%s: Lookup(%q, %q) = %q, %v; want %q", name, w.key, w.version, sum, ok, w.sum)
		}
		if r, ok := c.Refused(w.key, w.version); ok != (w.refused != "") || ok && r != w.refused {
			t.Errorf("%s: Refused(%q, %q) = %q, %v; want %q", name, w.key, w.version, r, ok, w.refused)
		}
	}
}

// TestDigestCacheRoundTrip: what a cache answers, the cache loaded from
// its file answers too, and a file is written only when something changed.
func TestDigestCacheRoundTrip(t *testing.T) {
	file := filepath.Join(t.TempDir(), "digests", "r.bin")
	c := LoadDigestCache(file)
	c.Put("a-1.0.0.tgz", "v1", sumA)
	c.Put("b-1.0.0.tgz", "v1", sumA)
	c.Put("b-1.0.0.tgz", "v2", sumB) // a new version replaces the old
	c.Put("c-1.0.0.tgz", "v1", sumA)
	c.Refuse("c-1.0.0.tgz", "v1", "misnamed") // the digest stays
	c.Refuse("d.txt", "v1", "not a chart")
	c.Refuse("e-1.0.0.tgz", "v1", "not a chart")
	c.Put("e-1.0.0.tgz", "v2", sumB) // a new version is not refused
	c.Put("f-1.0.0.tgz", "v1", sumA)
	c.Refuse("f-1.0.0.tgz", "v2", "not a chart") // nor has the old digest
	c.Put("g-1.0.0.tgz", "", sumA)               // no version, never found
	wants := []digestWant{
		{"a-1.0.0.tgz", "v1", sumA, ""},
		{"a-1.0.0.tgz", "v2", "", ""},
		{"a-1.0.0.tgz", "", "", ""},
		{"b-1.0.0.tgz", "v1", "", ""},
		{"b-1.0.0.tgz", "v2", sumB, ""},
		{"c-1.0.0.tgz", "v1", sumA, "misnamed"},
		{"d.txt", "v1", "", "not a chart"},
		{"d.txt", "v2", "", ""},
		{"e-1.0.0.tgz", "v1", "", ""},
		{"e-1.0.0.tgz", "v2", sumB, ""},
		{"f-1.0.0.tgz", "v1", "", ""},
		{"f-1.0.0.tgz", "v2", "", "not a chart"},
		{"g-1.0.0.tgz", "", "", ""},
		{"missing", "v1", "", ""},
	}
	checkDigests(t, "before save", c, wants)
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file: %v, %v; want mode 0600", fi, err)
	}
	checkDigests(t, "loaded", LoadDigestCache(file), wants)

	// Nothing changed: Save writes nothing (a file in its place stays).
	c.Put("a-1.0.0.tgz", "v1", sumA)
	if err := os.WriteFile(file, []byte("marker"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file); string(b) != "marker" {
		t.Errorf("Save of an unchanged cache wrote the file")
	}
}

// TestDigestCacheCorrupt: a file cut short, changed in any byte, with
// bytes after its end or of another format is an empty cache.
func TestDigestCacheCorrupt(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "r.bin")
	c := LoadDigestCache(file)
	c.Put("a-1.0.0.tgz", "v1", sumA)
	c.Put("b-1.0.0.tgz", "v1", sumB)
	c.Refuse("d.txt", "v1", "not a chart")
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	empty := []digestWant{
		{"a-1.0.0.tgz", "v1", "", ""},
		{"b-1.0.0.tgz", "v1", "", ""},
		{"d.txt", "v1", "", ""},
	}
	check := func(name string, b []byte) {
		t.Helper()
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		checkDigests(t, name, LoadDigestCache(file), empty)
	}
	eachDamaged(good, check)
	check("JSON", []byte(`{"a-1.0.0.tgz":{"version":"v1","sha256":"`+sumA+`"}}`))
	os.Remove(file)
	if err := os.Mkdir(file, 0o700); err != nil {
		t.Fatal(err)
	}
	checkDigests(t, "directory", LoadDigestCache(file), empty)
}

// eachDamaged calls check with every damaged copy of a state file's bytes
// good: cut short at each length, each byte changed, a byte appended.
func eachDamaged(good []byte, check func(name string, b []byte)) {
	for n := range len(good) {
		check(fmt.Sprintf("cut to %d bytes", n), good[:n])
	}
	for i := range good {
		b := []byte(string(good))
		b[i] ^= 0x10
		check(fmt.Sprintf("byte %d changed", i), b)
	}
	check("bytes after the end", append([]byte(string(good)), 0))
}

// TestDigestCacheMigrates: with no file yet, the JSON file chartsync kept
// before is read, written anew by the first Save and then removed.
func TestDigestCacheMigrates(t *testing.T) {
	dir := t.TempDir()
	file, legacy := filepath.Join(dir, "r.bin"), filepath.Join(dir, "r.json")
	old := map[string]map[string]string{
		"a-1.0.0.tgz": {"version": "v1", "sha256": sumA},
		"c-1.0.0.tgz": {"version": "v1", "sha256": sumB, "refused": "misnamed"},
		"d.txt":       {"version": "v1", "refused": "not a chart"},
		"x-1.0.0.tgz": {"version": "v1", "sha256": strings.ToUpper(sumA)},
		"y-1.0.0.tgz": {"version": "v1", "sha256": "abc"},
		"z-1.0.0.tgz": {"version": "v1", "sha256": sumA[:63] + "g"},
	}
	if err := statefile.WriteJSON(legacy, old); err != nil {
		t.Fatal(err)
	}
	wants := []digestWant{
		{"a-1.0.0.tgz", "v1", sumA, ""},
		{"c-1.0.0.tgz", "v1", sumB, "misnamed"},
		{"d.txt", "v1", "", "not a chart"},
		{"x-1.0.0.tgz", "v1", "", ""},
		{"y-1.0.0.tgz", "v1", "", ""},
		{"z-1.0.0.tgz", "v1", "", ""},
	}
	c := LoadDigestCache(file)
	checkDigests(t, "from JSON", c, wants)
	// Unchanged, but the first Save writes the new file all the same.
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(legacy); !os.IsNotExist(err) {
		t.Errorf("old file after Save: %v", err)
	}
	checkDigests(t, "from the new file", LoadDigestCache(file), wants)

	// Once the new file exists, an old one is not read.
	if err := statefile.WriteJSON(legacy, map[string]map[string]string{"b-1.0.0.tgz": {"version": "v1", "sha256": sumA}}); err != nil {
		t.Fatal(err)
	}
	checkDigests(t, "new file and old", LoadDigestCache(file), append(wants, digestWant{"b-1.0.0.tgz", "v1", "", ""}))

	// A corrupt old file is an empty cache, and is removed too.
	os.Remove(file)
	if err := os.WriteFile(legacy, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	c = LoadDigestCache(file)
	checkDigests(t, "corrupt JSON", c, []digestWant{{"a-1.0.0.tgz", "v1", "", ""}})
	c.Put("b-1.0.0.tgz", "v1", sumA)
	if err := c.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(legacy); !os.IsNotExist(err) {
		t.Errorf("corrupt old file after Save: %v", err)
	}
}

// TestDigestCacheNotHex: a digest Lookup could not give back as it was put
// is not recorded, and forgets what was recorded for its key.
func TestDigestCacheNotHex(t *testing.T) {
	file := filepath.Join(t.TempDir(), "r.bin")
	for _, sum := range []string{strings.ToUpper(sumA), sumA[:63], sumA + "0", "g" + sumA[1:], sumA[:63] + "g", "sha256:" + sumA} {
		c := LoadDigestCache(file)
		c.Put("a-1.0.0.tgz", "v1", sumB)
		c.Refuse("a-1.0.0.tgz", "v1", "misnamed")
		c.Put("a-1.0.0.tgz", "v1", sum)
		c.Refuse("b-1.0.0.tgz", "v1", "misnamed")
		c.Put("b-1.0.0.tgz", "v1", sum)
		c.Put("c-1.0.0.tgz", "v1", sum)
		wants := []digestWant{{"a-1.0.0.tgz", "v1", "", ""}, {"b-1.0.0.tgz", "v1", "", ""}, {"c-1.0.0.tgz", "v1", "", ""}}
		checkDigests(t, sum, c, wants)
		if err := c.Save(); err != nil {
			t.Fatal(err)
		}
		checkDigests(t, sum+" loaded", LoadDigestCache(file), wants)
	}
}

// digestEntries returns n keys, local-store versions (inode-size-mtime in
// hex) and sha256 digests shaped like a real repository's.
func digestEntries(n int) (keys, versions, sums []string) {
	for i := range n {
		keys = append(keys, fmt.Sprintf("chart-%04d-1.2.%d.tgz", i/10, i%10))
		versions = append(versions, fmt.Sprintf("%x-%x-%x", 0x2a0000+i, 3000+i%5000, int64(1764500000000000000)+int64(i)*7919))
		sum := sha256.Sum256([]byte(keys[i]))
		sums = append(sums, hex.EncodeToString(sum[:]))
	}
	return keys, versions, sums
}

// BenchmarkDigestCacheLoad loads a 100,000-entry cache file and looks up
// every entry; heap-B is the live heap the loaded cache holds.
func BenchmarkDigestCacheLoad(b *testing.B) {
	const n = 100_000
	keys, versions, sums := digestEntries(n)
	file := filepath.Join(b.TempDir(), "r.bin")
	w := LoadDigestCache(file)
	for i := range n {
		w.Put(keys[i], versions[i], sums[i])
		if i%100 == 0 {
			w.Refuse(keys[i], versions[i], "not a chart: no Chart.yaml")
		}
	}
	if err := w.Save(); err != nil {
		b.Fatal(err)
	}
	w = nil
	var c *DigestCache
	var before, after runtime.MemStats
	runtime.GC() // twice: the second frees what sync.Pools held
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c = LoadDigestCache(file)
		for i := range n {
			if sum, ok := c.Lookup(keys[i], versions[i]); !ok || sum != sums[i] {
				b.Fatalf("Lookup(%s) = %q, %v", keys[i], sum, ok)
			}
		}
	}
	b.StopTimer()
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc)-float64(before.HeapAlloc), "heap-B")
	runtime.KeepAlive(c)
	runtime.KeepAlive(keys) // part of before, so part of after
	runtime.KeepAlive(versions)
	runtime.KeepAlive(sums)
}
