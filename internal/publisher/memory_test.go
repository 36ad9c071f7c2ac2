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

// memoryWant is what a memory answers: the digest indexed gives for
// "name version" (and whether it knows one), or the verdict same gives
// for "a b".
type memoryWant struct {
	nv, digest string
	ok         bool
}

type verdictWant struct {
	a, b        string
	same, known bool
}

func checkMemory(t *testing.T, name string, m *Memory, wants []memoryWant, verdicts []verdictWant) {
	t.Helper()
	for _, w := range wants {
		n, v, _ := strings.Cut(w.nv, " ")
		if d, ok := m.indexed(n, v); ok != w.ok || d != w.digest {
			t.Errorf("%s: indexed(%q, %q) = %q, %v; want %q, %v", name, n, v, d, ok, w.digest, w.ok)
		}
	}
	for _, w := range verdicts {
		if same, known := m.same(w.a, w.b); same != w.same || known != w.known {
			t.Errorf("%s: same(%q, %q) = %v, %v; want %v, %v", name, w.a, w.b, same, known, w.same, w.known)
		}
	}
}

// indexOf returns an index of the entries "name version" → digest.
func indexOf(entries ...[3]string) *Index {
	idx := &Index{charts: map[string][]*Entry{}}
	for _, e := range entries {
		idx.charts[e[0]] = append(idx.charts[e[0]], &Entry{Name: e[0], Version: e[1], Digest: e[2], ord: -1})
	}
	return idx
}

var (
	memoryIdx = indexOf(
		[3]string{"a", "1.0.0", sumA},
		[3]string{"a", "1.1.0", sumB},
		[3]string{"b", "1.0.0", ""},                      // no digest
		[3]string{"c", "1.0.0", strings.ToUpper(sumA)},   // hex, not as helm writes it
		[3]string{"d", "1.0.0", "sha256:" + sumA},        // another tool's form
		[3]string{"e", "1.0.0", sumA[:63]},               // short
		[3]string{"f", "1.0.0", "not \x00 a digest\n ü"}, // anything
	)
	memoryWants = []memoryWant{
		{"a 1.0.0", sumA, true},
		{"a 1.1.0", sumB, true},
		{"b 1.0.0", "", true},
		{"c 1.0.0", strings.ToUpper(sumA), true},
		{"d 1.0.0", "sha256:" + sumA, true},
		{"e 1.0.0", sumA[:63], true},
		{"f 1.0.0", "not \x00 a digest\n ü", true},
		{"a 2.0.0", "", false},
		{"g 1.0.0", "", false},
	}
	memoryVerdicts = []verdictWant{
		{sumA, sumB, true, true},
		{sumB, sumA, false, true},
		{sumA, "", false, true},
		{"", sumB, false, false},
	}
	noMemory  = []memoryWant{{"a 1.0.0", "", false}, {"b 1.0.0", "", false}, {"f 1.0.0", "", false}}
	noVerdict = []verdictWant{{sumA, sumB, false, false}, {sumA, "", false, false}}
)

// fillMemory records memoryIdx and memoryVerdicts in m.
func fillMemory(m *Memory) {
	m.saw(memoryIdx)
	m.setSame(sumA, sumB, true)
	m.setSame(sumB, sumA, false)
	m.setSame(sumA, "", false)
}

// TestMemoryRoundTrip: what a memory answers, the memory loaded from its
// file answers too; the first digest seen stays; a file is written only
// when something changed.
func TestMemoryRoundTrip(t *testing.T) {
	file := filepath.Join(t.TempDir(), "memory", "r.bin")
	m := LoadMemory(file)
	fillMemory(m)
	// A later index read with other digests changes nothing.
	m.saw(indexOf([3]string{"a", "1.0.0", sumB}, [3]string{"b", "1.0.0", sumA}, [3]string{"f", "1.0.0", sumA}))
	checkMemory(t, "before save", m, memoryWants, memoryVerdicts)
	if err := m.Save(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file: %v, %v; want mode 0600", fi, err)
	}
	loaded := LoadMemory(file)
	checkMemory(t, "loaded", loaded, memoryWants, memoryVerdicts)

	// Nothing changed: Save writes nothing (a file in its place stays).
	loaded.saw(memoryIdx)
	if err := os.WriteFile(file, []byte("marker"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := loaded.Save(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(file); string(b) != "marker" {
		t.Errorf("Save of an unchanged memory wrote the file")
	}

	// The zero value keeps it in memory only.
	var z Memory
	fillMemory(&z)
	checkMemory(t, "zero value", &z, memoryWants, memoryVerdicts)
	if err := z.Save(); err != nil {
		t.Fatal(err)
	}
}

// TestMemorySawAllocates: a cycle that reads an index of known entries
// allocates nothing for them.
func TestMemorySawAllocates(t *testing.T) {
	m := LoadMemory(filepath.Join(t.TempDir(), "r.bin"))
	m.saw(memoryIdx)
	if n := testing.AllocsPerRun(10, func() { m.saw(memoryIdx) }); n != 0 {
		t.Errorf("saw of known entries: %v allocations, want none", n)
	}
}

// TestMemoryCorrupt: a file cut short, changed in any byte, with bytes
// after its end or of another format is an empty memory.
func TestMemoryCorrupt(t *testing.T) {
	file := filepath.Join(t.TempDir(), "r.bin")
	m := LoadMemory(file)
	fillMemory(m)
	if err := m.Save(); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, b []byte) {
		t.Helper()
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
		checkMemory(t, name, LoadMemory(file), noMemory, noVerdict)
	}
	eachDamaged(good, check)
	check("JSON", []byte(`{"indexed":{"a 1.0.0":"`+sumA+`"}}`))
	digests := LoadDigestCache(file)
	digests.Put("a-1.0.0.tgz", "v1", sumA)
	if err := digests.Save(); err != nil {
		t.Fatal(err)
	}
	checkMemory(t, "a digest cache", LoadMemory(file), noMemory, noVerdict)
	os.Remove(file)
	if err := os.Mkdir(file, 0o700); err != nil {
		t.Fatal(err)
	}
	checkMemory(t, "directory", LoadMemory(file), noMemory, noVerdict)
}

// TestMemoryMigrates: with no file yet, the JSON file chartsync kept
// before is read, written anew by the first Save and then removed.
func TestMemoryMigrates(t *testing.T) {
	dir := t.TempDir()
	file, legacy := filepath.Join(dir, "r.bin"), filepath.Join(dir, "r.json")
	old := map[string]any{
		"indexed": map[string]string{},
		"same":    map[string]bool{sumA + " " + sumB: true, sumB + " " + sumA: false, sumA + " ": false},
	}
	for _, w := range memoryWants {
		if w.ok {
			old["indexed"].(map[string]string)[w.nv] = w.digest
		}
	}
	if err := statefile.WriteJSON(legacy, old); err != nil {
		t.Fatal(err)
	}
	m := LoadMemory(file)
	checkMemory(t, "from JSON", m, memoryWants, memoryVerdicts)
	// Unchanged, but the first Save writes the new file all the same.
	if err := m.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(legacy); !os.IsNotExist(err) {
		t.Errorf("old file after Save: %v", err)
	}
	checkMemory(t, "from the new file", LoadMemory(file), memoryWants, memoryVerdicts)

	// Once the new file exists, an old one is not read.
	if err := statefile.WriteJSON(legacy, map[string]any{"indexed": map[string]string{"g 1.0.0": sumA}}); err != nil {
		t.Fatal(err)
	}
	checkMemory(t, "new file and old", LoadMemory(file), memoryWants, memoryVerdicts)

	// A corrupt old file is an empty memory, and is removed too.
	os.Remove(file)
	if err := os.WriteFile(legacy, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	m = LoadMemory(file)
	checkMemory(t, "corrupt JSON", m, noMemory, noVerdict)
	m.saw(memoryIdx)
	if err := m.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(legacy); !os.IsNotExist(err) {
		t.Errorf("corrupt old file after Save: %v", err)
	}
}

// memoryIndex returns an index of n entries shaped like a large
// repository's: ten versions a chart, 64-hex digests.
func memoryIndex(n int) *Index {
	idx := &Index{charts: map[string][]*Entry{}}
	for i := range n {
		name := fmt.Sprintf("chart-%04d", i/10)
		version := fmt.Sprintf("1.2.%d", i%10)
		sum := sha256.Sum256([]byte(name + " " + version))
		idx.charts[name] = append(idx.charts[name], &Entry{Name: name, Version: version, Digest: hex.EncodeToString(sum[:]), ord: -1})
	}
	return idx
}

// BenchmarkMemoryCycle is a cycle's use of the memory of a 100,000-entry
// repository: load the file, saw an index of the same entries and one new
// one, Save (which writes the file, as the new entry changed it). heap-B is
// the live heap the memory holds after the cycle.
func BenchmarkMemoryCycle(b *testing.B) {
	const n = 100_000
	idx := memoryIndex(n)
	file := filepath.Join(b.TempDir(), "r.bin")
	w := LoadMemory(file)
	w.saw(idx)
	w.setSame(idx.charts["chart-0000"][0].Digest, idx.charts["chart-0000"][1].Digest, false)
	if err := w.Save(); err != nil {
		b.Fatal(err)
	}
	w = nil
	saved, err := os.ReadFile(file)
	if err != nil {
		b.Fatal(err)
	}
	idx.charts["new"] = []*Entry{{Name: "new", Version: "1.0.0", Digest: "sha256:x", ord: -1}}
	var m *Memory
	var before, after runtime.MemStats
	runtime.GC() // twice: the second frees what sync.Pools held
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		if err := os.WriteFile(file, saved, 0o600); err != nil {
			b.Fatal(err)
		}
		m = nil
		b.StartTimer()
		m = LoadMemory(file)
		m.saw(idx)
		if err := m.Save(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if d, ok := m.indexed("chart-0001", "1.2.0"); !ok || d != idx.charts["chart-0001"][0].Digest {
		b.Fatalf("indexed = %q, %v", d, ok)
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc)-float64(before.HeapAlloc), "heap-B")
	runtime.KeepAlive(m)
	runtime.KeepAlive(idx) // part of before, so part of after
	runtime.KeepAlive(saved)
	b.ReportMetric(float64(len(saved)), "file-B")
}

// TestMemoryInconsistent: a file whose checksum holds but whose entries
// contradict each other is an empty memory.
func TestMemoryInconsistent(t *testing.T) {
	file := filepath.Join(t.TempDir(), "r.bin")
	sum := make([]byte, 32)
	tests := []struct {
		name    string
		s, o, v uint64
		text    string
		fields  func(w *statefile.BinaryWriter)
	}{
		{"verdict neither 0 nor 1", 0, 0, 1, "x y", func(w *statefile.BinaryWriter) { w.Uvarint(3); w.Bytes([]byte{2}) }},
		{"key twice", 2, 0, 0, "a 1a 1", func(w *statefile.BinaryWriter) { w.Uvarint(3); w.Bytes(sum); w.Uvarint(3); w.Bytes(sum) }},
		{"key with a sum and a digest", 1, 1, 0, "a 1a 1d", func(w *statefile.BinaryWriter) { w.Uvarint(3); w.Bytes(sum); w.Uvarint(3); w.Uvarint(1) }},
	}
	for _, tt := range tests {
		err := statefile.WriteBinary(file, memoryMagic, func(w *statefile.BinaryWriter) {
			w.Uvarint(tt.s)
			w.Uvarint(tt.o)
			w.Uvarint(tt.v)
			w.Uvarint(uint64(len(tt.text)))
			w.String(tt.text)
			tt.fields(w)
		})
		if err != nil {
			t.Fatal(err)
		}
		checkMemory(t, tt.name, LoadMemory(file), []memoryWant{{"a 1", "", false}}, []verdictWant{{"x", "y", false, false}})
	}
	// The same content, consistent, loads: the cases above fail for what
	// they say.
	err := statefile.WriteBinary(file, memoryMagic, func(w *statefile.BinaryWriter) {
		w.Uvarint(1)
		w.Uvarint(0)
		w.Uvarint(1)
		w.Uvarint(6)
		w.String("a 1x y")
		w.Uvarint(3)
		w.Bytes(sum)
		w.Uvarint(3)
		w.Bytes([]byte{1})
	})
	if err != nil {
		t.Fatal(err)
	}
	checkMemory(t, "consistent", LoadMemory(file), []memoryWant{{"a 1", strings.Repeat("0", 64), true}}, []verdictWant{{"x", "y", true, true}})
}
