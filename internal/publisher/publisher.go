// Package publisher keeps a Helm chart repository in an append-only store:
// package files are created and never replaced, and index.yaml only ever
// grows. It knows storage and index.yaml, and nothing of git.
//
// The index is always rebuilt from what is really stored: an entry's digest
// is the sha256 of the stored bytes, and every call to Publish reconciles
// the store's listing with the index, so an entry lost to a concurrent
// writer is restored within one cycle. See docs/consistency.md.
package publisher

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"

	"github.com/chartsync/chartsync/internal/publisher/store"
)

// Errors a Publisher returns; test with errors.Is.
var (
	// ErrIndexUnreadable: index.yaml exists but cannot be read or parsed.
	// Nothing is written while it is so, since rewriting it could shrink it.
	ErrIndexUnreadable = errors.New("index unreadable")
	// ErrStoredDiffers: the store holds other bytes under the package's
	// name, and they could not be compared by content.
	ErrStoredDiffers = errors.New("stored package differs")
	// ErrContentDiffers: the chart version is published (indexed, or stored
	// by another publisher or tool) with other content than this build:
	// the version must be bumped.
	ErrContentDiffers = errors.New("content differs from the published package: bump the version")
	// ErrNameClaimed: the package's file name is already claimed by
	// another chart name and version (in the index, in the store, or by
	// another chart in the same Publish): "a-1.0.0" 1.0.0 and "a"
	// 1.0.0-1.0.0 are both a-1.0.0-1.0.0.tgz.
	ErrNameClaimed = errors.New("package file name claimed by another chart version")
)

// Config says where in a store one repository lives.
type Config struct {
	Prefix  string // key prefix without surrounding slashes; "" is the root
	BaseURL string // if set, index urls are absolute under it
	// Digests, if set, remembers the sha256 of each stored package by its
	// store version, so that reconciling reads only new or changed objects.
	Digests *DigestCache
	// Limits on what is read and written; 0 means the default. See
	// DefaultMaxIndexSize and DefaultMaxPackageSize.
	MaxIndexSize   int64
	MaxPackageSize int64
	// Memory, if set, remembers the index entries seen and content
	// comparisons across cycles (see Memory).
	Memory *Memory
	// IndexCache, if set, is a file keeping the last index parsed, by its
	// store version, so that an unchanged index is not read again (see
	// Publisher.Index).
	IndexCache string
	// Format is the format index.yaml is written in: FormatYAML or
	// FormatJSON (helm reads both). "" keeps the format the index was read
	// in. An index read in another format is rewritten in this one, with
	// every entry.
	Format string
}

// Publisher writes packages and the index of one repository.
type Publisher struct {
	store store.Store
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	// prefix starts the keys of the repository's files: "" or Prefix+"/".
	prefix string
	// listed is the listing of the prefix that Index took to learn the
	// index's version; the reconciliation that follows uses it unless a
	// package was created since (see packages).
	listed   []store.Object
	created  []string // keys Create was called for since the listing
	surveyed *string  // index.yaml's version in listed, until Index uses it
}

// New returns a Publisher for the repository at cfg.Prefix in s.
func New(s store.Store, cfg Config, log *slog.Logger) *Publisher {
	if cfg.Digests == nil {
		cfg.Digests = &DigestCache{}
	}
	if cfg.Memory == nil {
		cfg.Memory = &Memory{}
	}
	p := &Publisher{store: s, cfg: cfg, log: log, now: time.Now}
	if cfg.Prefix != "" {
		p.prefix = cfg.Prefix + "/"
	}
	return p
}

func (p *Publisher) key(name string) string { return p.prefix + name }

// Index returns the repository's index and its store version. A missing
// index is an empty index with version "". Any other failure wraps
// ErrIndexUnreadable or the store's error; an index larger than
// Config.MaxIndexSize is unreadable, refused before it is read.
//
// With Config.IndexCache set, the store's listing of index.yaml comes
// first: when the listed version is the one the cache was parsed from, the
// cached index is returned and the index is neither read nor parsed.
// Otherwise the index read is parsed and cached.
func (p *Publisher) Index(ctx context.Context) (*Index, string, error) {
	where := p.store.String() + " " + p.key("index.yaml")
	if p.surveyed == nil && p.cfg.IndexCache != "" {
		if _, _, err := p.Survey(ctx); err != nil {
			return nil, "", err
		}
	}
	var listed string
	if p.surveyed != nil {
		listed, p.surveyed = *p.surveyed, nil
		if idx := loadIndexCache(p.cfg.IndexCache, where, listed); idx != nil {
			return idx, listed, nil
		}
	}
	idx, ver, err := p.readIndex(ctx)
	if ver != listed {
		// The index changed since the listing: a package it lists may be
		// missing from the listing. Reconcile with a new one.
		p.listed = nil
	}
	if err == nil && p.cfg.IndexCache != "" && ver != "" && ver == listed {
		if err := saveIndexCache(p.cfg.IndexCache, where, ver, idx); err != nil {
			p.log.Warn("index cache not saved", "file", p.cfg.IndexCache, "err", err)
		}
	}
	return idx, ver, err
}

// readIndex reads and parses the stored index.
func (p *Publisher) readIndex(ctx context.Context) (*Index, string, error) {
	b, ver, err := store.ReadLimited(ctx, p.store, p.key("index.yaml"), p.cfg.maxIndexSize())
	if errors.Is(err, store.ErrNotExist) {
		return NewIndex(), "", nil
	}
	if errors.Is(err, store.ErrTooLarge) {
		return nil, "", fmt.Errorf("%w: %w (max_index_size)", ErrIndexUnreadable, err)
	}
	if err != nil {
		return nil, "", fmt.Errorf("read index: %w", err)
	}
	idx, err := ParseIndex(b)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s: %v", ErrIndexUnreadable, p.key("index.yaml"), err)
	}
	return idx, ver, nil
}

// Package is one chart version built by this publisher. Data may be nil
// for a version already in the index when Digest is set: Load then builds
// the bytes if the publisher needs them (to restore the package or compare
// contents).
type Package struct {
	Metadata   *chart.Metadata
	Data       []byte
	Digest     string // hex sha256 of the bytes; computed from Data if empty
	Provenance []byte // the .prov file; nil for an unsigned package
	Load       func(ctx context.Context) ([]byte, error)
}

// sum returns the package's digest.
func (pkg *Package) sum() string {
	if pkg.Digest == "" {
		pkg.Digest = digest(pkg.Data)
	}
	return pkg.Digest
}

// bytes returns the package's bytes, building them if needed.
func (pkg *Package) bytes(ctx context.Context) ([]byte, error) {
	if pkg.Data == nil && pkg.Load != nil {
		b, err := pkg.Load(ctx)
		if err != nil {
			return nil, err
		}
		if digest(b) != pkg.sum() {
			return nil, fmt.Errorf("rebuild of %s gave another digest", Filename(pkg.Metadata.Name, pkg.Metadata.Version))
		}
		pkg.Data = b
	}
	if pkg.Data == nil {
		return nil, errors.New("no bytes")
	}
	return pkg.Data, nil
}

// Filename is the package's file name in the repository, as helm names it.
func Filename(name, version string) string { return name + "-" + version + ".tgz" }

// Report is what one Publish did. File names are those of packages
// directly under the prefix.
type Report struct {
	// Failed maps a package file name given to Publish to why it was not
	// published or does not match what is published.
	Failed map[string]error
	// Published lists the package files now in the index that this call
	// stored and verified (or found stored with exactly its bytes).
	Published []string
	// Adopted lists stored packages that no index read had listed before
	// and that this call indexed from their stored bytes: packages of
	// another tool, of another publisher still in flight, or given to
	// Publish and found stored with other bytes of the same content.
	Adopted []string
	// Repaired lists index entries that an earlier index read listed and a
	// later one lacked (a lost update), added back from the stored bytes.
	Repaired []string
	// Restored lists packages whose stored bytes differed from the index
	// digest and were put back: from this call's own build with exactly
	// the indexed digest.
	Restored []string
	// Missing lists index entries whose package is not in the store.
	Missing []string
	// Modified lists stored packages whose bytes no longer match the digest
	// in the index and could not be restored.
	Modified []string
	// Edited lists index entries whose digest changed since an earlier
	// index read while the stored package kept the bytes first indexed:
	// the index was edited, not the package.
	Edited []string
	// Entries is the number of chart versions in the index afterwards.
	Entries int
	// Listing digests the package files the index was reconciled with
	// (see Survey), when the index was not written.
	Listing string
	// Wrote is true when index.yaml was written.
	Wrote bool
	// Version is the store version of index.yaml afterwards: the one this
	// call wrote, or the one it read when it wrote nothing ("" if there is
	// no index). Set only when PublishOn returns no error.
	Version string
}

// Publish reads the index and calls PublishOn.
func (p *Publisher) Publish(ctx context.Context, pkgs []Package) (*Report, error) {
	idx, ver, err := p.Index(ctx)
	if err != nil {
		return &Report{Failed: map[string]error{}}, err
	}
	return p.PublishOn(ctx, idx, ver, pkgs)
}

// PublishOn publishes on the index idx at store version ver, as read by
// Index (so that a cycle reads the index once). pkgs are this publisher's
// builds of the chart versions it holds, published or not:
//
//   - A version absent from idx is stored (never over other bytes) and
//     merged into the index. If its name is taken by other bytes of the
//     same chart content (another tool packaged it), those are adopted; of
//     other content, it fails with ErrContentDiffers; by another chart
//     version, with ErrNameClaimed.
//   - A version in idx whose build gives another digest fails with
//     ErrContentDiffers unless the indexed package holds the same content.
//     A build with exactly the indexed digest restores the stored package
//     if it was replaced: the first indexed digest wins.
//
// Then every stored package the index lacks is added from its stored bytes
// (and reported as Repaired or Adopted), and every entry is checked against
// the stored bytes. Each stored package is read at most once per call.
// PublishOn returns an error only when the repository itself could not be
// updated (index unreadable, store unreachable); the report then holds the
// packages that failed alone, and nothing else: no package counts as
// published until the index that lists it is written.
func (p *Publisher) PublishOn(ctx context.Context, idx *Index, ver string, pkgs []Package) (*Report, error) {
	c := &call{
		rep:     &Report{Failed: map[string]error{}},
		builds:  map[string]Package{},
		stored:  map[string]string{},
		data:    map[string][]byte{},
		claimed: map[string]bool{},
	}
	p.cfg.Memory.saw(idx)
	claims := p.claims(idx)
	for i := range pkgs {
		pkgs[i].sum()
	}
	for _, pkg := range pkgs {
		name := Filename(pkg.Metadata.Name, pkg.Metadata.Version)
		if prev, ok := c.builds[name]; ok && (prev.Metadata.Name != pkg.Metadata.Name || prev.Metadata.Version != pkg.Metadata.Version) {
			// Two chart versions of this call share a file name: neither may
			// claim it.
			c.claimed[name] = true
			err := fmt.Errorf("%w: %s is the file name of both %q %s and %q %s", ErrNameClaimed, name,
				prev.Metadata.Name, prev.Metadata.Version, pkg.Metadata.Name, pkg.Metadata.Version)
			c.rep.Failed[name] = err
			continue
		}
		c.builds[name] = pkg
	}
	for _, pkg := range pkgs {
		if err := ctx.Err(); err != nil {
			return c.rep, err
		}
		md := pkg.Metadata
		name := Filename(md.Name, md.Version)
		if c.claimed[name] {
			continue
		}
		if other, ok := claims[name]; ok && (other.Name != md.Name || other.Version != md.Version) {
			c.rep.Failed[name] = fmt.Errorf("%w: the index lists %q %s under %s", ErrNameClaimed, other.Name, other.Version, name)
			continue
		}
		if cv := Lookup(idx, md.Name, md.Version); cv != nil {
			if err := p.checkIndexed(ctx, cv, pkg, c); err != nil {
				c.rep.Failed[name] = err
			}
			continue
		}
		if max := p.cfg.maxPackageSize(); int64(len(pkg.Data)) > max {
			c.rep.Failed[name] = fmt.Errorf("package %w (max_package_size)", store.TooLarge(name, int64(len(pkg.Data)), max))
			continue
		}
		err := p.createProvenance(ctx, name, pkg.Provenance)
		if err == nil {
			err = p.create(ctx, name, pkg, c)
		}
		if err != nil {
			// A name this store cannot hold fails alone, like a taken name.
			if !errors.Is(err, ErrStoredDiffers) && !errors.Is(err, ErrContentDiffers) &&
				!errors.Is(err, ErrNameClaimed) && !errors.Is(err, store.ErrInvalidKey) {
				return c.rep, err // the store's error names the key
			}
			c.rep.Failed[name] = err
		}
	}
	if err := p.updateIndex(ctx, idx, ver, c); err != nil {
		return c.rep, err
	}
	return c.rep, nil
}

// call is the state of one PublishOn.
type call struct {
	rep     *Report
	builds  map[string]Package // file name -> this publisher's build
	stored  map[string]string  // file name -> digest of our bytes, stored by this call
	adopted map[string]bool    // file names given to Publish whose stored bytes (same content) are adopted
	data    map[string][]byte  // key -> bytes read from the store by this call
	claimed map[string]bool    // file names contested by two chart versions not yet indexed: never indexed by this call
}

// read returns the stored bytes of key, reading them at most once per call.
func (p *Publisher) read(ctx context.Context, key string, c *call) ([]byte, error) {
	if b, ok := c.data[key]; ok {
		return b, nil
	}
	b, ver, err := p.store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	c.data[key] = b
	p.cfg.Digests.Put(key, ver, digest(b))
	return b, nil
}

// create stores one package unless its name is taken, and decides what a
// taken name means. Where the store cannot create atomically, it reads back
// what it wrote.
func (p *Publisher) create(ctx context.Context, name string, pkg Package, c *call) error {
	key := p.key(name)
	ours := digest(pkg.Data)
	p.created = append(p.created, key)
	err := p.store.Create(ctx, key, pkg.Data)
	if err != nil && !errors.Is(err, store.ErrExist) {
		return err
	}
	if err == nil && p.store.Atomic() {
		c.stored[name] = ours
		return nil
	}
	b, gerr := p.read(ctx, key, c)
	if gerr != nil {
		return fmt.Errorf("read back %s after creating it: %w", name, gerr)
	}
	theirs := digest(b)
	if theirs == ours {
		c.stored[name] = ours
		return nil
	}
	// Another writer's bytes: the same chart version (adopt them if the
	// content is ours), or another chart version under the same file name.
	md, derr := chartOf(b)
	if derr != nil {
		return fmt.Errorf("%w: %s holds sha256 %s, which is not a chart archive (%v); this build is %s", ErrStoredDiffers, name, theirs, derr, ours)
	}
	if md.Name != pkg.Metadata.Name || md.Version != pkg.Metadata.Version {
		c.claimed[name] = true
		return fmt.Errorf("%w: the store holds %q %s under %s", ErrNameClaimed, md.Name, md.Version, name)
	}
	same, err := p.sameContent(theirs, b, ours, pkg.Data)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrStoredDiffers, name, err)
	}
	if !same {
		return fmt.Errorf("%w (stored by another publisher or tool: sha256 %s, this build %s)", ErrContentDiffers, theirs, ours)
	}
	if c.adopted == nil {
		c.adopted = map[string]bool{}
	}
	c.adopted[name] = true
	return nil
}

// sameContent compares two packages by content, remembering the verdict.
func (p *Publisher) sameContent(sumA string, a []byte, sumB string, b []byte) (bool, error) {
	if same, ok := p.cfg.Memory.same(sumA, sumB); ok {
		return same, nil
	}
	same, err := sameContent(a, b)
	if err != nil {
		return false, err
	}
	p.cfg.Memory.setSame(sumA, sumB, same)
	return same, nil
}

// checkIndexed compares this publisher's build of an indexed chart version
// with the indexed package: equal digests, or the same content.
func (p *Publisher) checkIndexed(ctx context.Context, cv *Entry, pkg Package, c *call) error {
	ours := pkg.sum()
	if cv.Digest == "" || cv.Digest == ours {
		return nil
	}
	if same, ok := p.cfg.Memory.same(cv.Digest, ours); ok {
		if same {
			return nil
		}
		return fmt.Errorf("%w (index sha256 %s, this build %s)", ErrContentDiffers, cv.Digest, ours)
	}
	name := Filename(pkg.Metadata.Name, pkg.Metadata.Version)
	b, err := p.read(ctx, p.key(name), c)
	if err != nil || digest(b) != cv.Digest {
		// The indexed bytes are not at hand: the builds differ, and nothing
		// shows that the contents agree.
		return fmt.Errorf("%w (index sha256 %s, this build %s; the stored package does not have the indexed digest, so contents cannot be compared)", ErrContentDiffers, cv.Digest, ours)
	}
	data, err := pkg.bytes(ctx)
	if err != nil {
		return fmt.Errorf("%w (index sha256 %s, this build %s; build again to compare contents: %v)", ErrContentDiffers, cv.Digest, ours, err)
	}
	same, err := p.sameContent(cv.Digest, b, ours, data)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrStoredDiffers, name, err)
	}
	if !same {
		return fmt.Errorf("%w (index sha256 %s, this build %s)", ErrContentDiffers, cv.Digest, ours)
	}
	return nil
}

// createProvenance stores a package's .prov before the package itself, so
// that a signed package is never stored without its signature. A .prov
// already stored is kept: it signs the same digest (packages are
// reproducible) or, if the stored package differs, the package fails and
// `helm --verify` refuses the pair, never accepts it.
func (p *Publisher) createProvenance(ctx context.Context, name string, prov []byte) error {
	if prov == nil {
		return nil
	}
	p.created = append(p.created, p.key(name+".prov"))
	err := p.store.Create(ctx, p.key(name+".prov"), prov)
	if err != nil && !errors.Is(err, store.ErrExist) {
		return err
	}
	return nil
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

const maxIndexAttempts = 10

// updateIndex merges the stored packages and the reconciled listing into
// index.yaml with a guarded replace, retrying on conflict. The first round
// works on idx as read by the caller; later rounds re-read it.
func (p *Publisher) updateIndex(ctx context.Context, idx *Index, ver string, c *call) error {
	for attempt := 1; ; attempt++ {
		if attempt > 1 {
			var err error
			if idx, ver, err = p.Index(ctx); err != nil {
				return err
			}
			p.cfg.Memory.saw(idx)
		}
		objs, err := p.packages(ctx)
		if err != nil {
			return err
		}
		// The report says what is in the index only once it is there.
		next := &Report{Failed: c.rep.Failed}
		changed, err := p.merge(ctx, idx, objs, c, next)
		if err != nil {
			return err
		}
		next.Entries = Entries(idx)
		if p.cfg.Format != "" && ver != "" && idx.Format() != p.cfg.Format {
			changed = true // switch the stored index to the configured format
		}
		if !changed {
			next.Version, next.Listing = ver, p.listingDigest(objs)
			*c.rep = *next
			p.save()
			return nil
		}
		idx.Generated = p.now()
		if err := idx.SetFormat(p.cfg.Format); err != nil {
			return err
		}
		b, err := idx.Marshal()
		if err != nil {
			return err
		}
		newVer, err := p.store.Replace(ctx, p.key("index.yaml"), b, ver)
		// The text written, as large as the index, is garbage from here,
		// but the heap may grow to twice the size it had while the text
		// was live before it is collected: collect it now.
		b = nil
		runtime.GC()
		if err == nil && !p.store.Atomic() {
			err = p.verify(ctx, idx)
		}
		if err == nil {
			p.cacheWritten(idx, newVer)
			p.cfg.Memory.saw(idx)
			next.Wrote, next.Version = true, newVer
			*c.rep = *next
			p.save()
			return nil
		}
		if !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotExist) {
			return fmt.Errorf("write index: %w", err)
		}
		if attempt == maxIndexAttempts {
			return fmt.Errorf("write index: gave up after %d attempts: %w", attempt, err)
		}
		p.log.Debug("index changed concurrently, merging again", "store", p.store.String(), "attempt", attempt, "err", err)
		if err := store.Backoff(ctx, 100*time.Millisecond, 2*time.Second, attempt); err != nil {
			return err
		}
	}
}

// save writes the digest cache and the memory. A failure (a full or
// read-only state dir) is a warning, never the cycle's failure: the index
// is written by then, and both only save work.
func (p *Publisher) save() {
	p.saveDigests()
	if err := p.cfg.Memory.Save(); err != nil {
		p.log.Warn("publisher memory not saved", "file", p.cfg.Memory.file.Name, "err", err)
	}
}

// errIndexGone: the index was not found when read back right after it was
// written (a replica that has not seen the write yet, or a concurrent
// deletion). It is a conflict: merge and write again.
var errIndexGone = fmt.Errorf("index.yaml not found when read back after writing it: %w", store.ErrConflict)

// verify re-reads the index after an unguarded write and reports a
// conflict if a concurrent writer dropped any of the entries just written.
func (p *Publisher) verify(ctx context.Context, want *Index) error {
	b, _, err := p.store.Get(ctx, p.key("index.yaml"))
	if errors.Is(err, store.ErrNotExist) {
		return errIndexGone
	}
	if err != nil {
		return fmt.Errorf("read index back: %w", err)
	}
	got, err := ParseIndex(b)
	if err != nil {
		return fmt.Errorf("%w: %s read back: %v", ErrIndexUnreadable, p.key("index.yaml"), err)
	}
	for name, es := range want.charts {
		for _, cv := range es {
			if Lookup(got, name, cv.Version) == nil {
				return fmt.Errorf("verify index: %s %s missing after write, a concurrent writer replaced it: %w", name, cv.Version, store.ErrConflict)
			}
		}
	}
	return nil
}

// packages lists the package files directly under the prefix (ChartMuseum's
// depth-1 layout), in key order.
//
// The listing Index took is used once, with the objects created since
// looked up one by one: a cycle lists the store once.
func (p *Publisher) packages(ctx context.Context) ([]store.Object, error) {
	objs := p.withCreated(ctx, p.listed)
	p.listed, p.created = nil, nil
	if objs == nil {
		var err error
		if objs, err = p.store.List(ctx, p.prefix); err != nil {
			return nil, fmt.Errorf("list packages: %w", err)
		}
	}
	// objs is this call's own: keep its package files in place.
	objs = slices.DeleteFunc(objs, func(o store.Object) bool { return !p.isPackage(o.Key) })
	if !slices.IsSortedFunc(objs, byKey) {
		slices.SortFunc(objs, byKey)
	}
	return objs, nil
}

// isPackage reports whether key is a package file directly under the
// prefix.
func (p *Publisher) isPackage(key string) bool {
	name, ok := strings.CutPrefix(key, p.prefix)
	return ok && strings.HasSuffix(name, ".tgz") && !strings.Contains(name, "/")
}

func byKey(a, b store.Object) int { return strings.Compare(a.Key, b.Key) }

// fileOf returns the package file name an index url refers to in this
// repository: the url itself when relative and without a directory, or the
// part after BaseURL. Any other url points elsewhere: "".
func (p *Publisher) fileOf(u string) string {
	if p.cfg.BaseURL != "" {
		if rest, ok := strings.CutPrefix(u, strings.TrimSuffix(p.cfg.BaseURL, "/")+"/"); ok {
			u = rest
		}
	}
	if u == "" || strings.Contains(u, "/") || strings.Contains(u, ":") {
		return ""
	}
	return u
}

// claims maps each package file of this repository to the index entry
// whose url names it exactly, matched by (name, version) and exact url,
// never by url basename.
func (p *Publisher) claims(idx *Index) map[string]*Entry {
	m := map[string]*Entry{}
	for _, es := range idx.charts {
		for _, cv := range es {
			if f := p.fileOf(cv.URL); f != "" {
				if _, dup := m[f]; !dup || Filename(cv.Name, cv.Version) == f {
					m[f] = cv
				}
			}
		}
	}
	return m
}

// merge adds to idx every stored package it lacks, described from the
// stored bytes, and checks that each entry's digest matches the stored
// bytes, restoring the indexed bytes where it holds them. It never removes
// or rewrites an existing entry. It reports whether idx changed.
func (p *Publisher) merge(ctx context.Context, idx *Index, objs []store.Object, c *call, rep *Report) (bool, error) {
	claims := p.claims(idx)
	changed := false
	for _, obj := range objs {
		name := obj.Key[len(p.prefix):]
		if c.claimed[name] {
			continue // a name conflict: index neither claimant
		}
		cv := claims[name]
		if cv != nil && cv.Digest == "" {
			continue // an entry from another tool: nothing to compare with
		}
		if max := p.cfg.maxPackageSize(); obj.Size > max {
			p.log.Warn("stored package not read", "store", p.store.String(), "chart", name,
				"err", fmt.Errorf("%w (max_package_size)", store.TooLarge(obj.Key, obj.Size, max)))
			continue
		}
		if reason, ok := p.cfg.Digests.Refused(obj.Key, obj.Version); ok && cv == nil {
			// Not a chart when last read, and unchanged since: not read again.
			p.log.Debug("stored package not indexed", "store", p.store.String(), "chart", name, "err", reason)
			continue
		}
		sum, err := p.storedDigest(ctx, obj, c)
		if err != nil {
			return false, err
		}
		ours := c.stored[name] == sum
		switch {
		case cv != nil && cv.Digest == sum:
			if ours {
				rep.Published = append(rep.Published, name) // perhaps indexed by a concurrent publisher
			}
		case cv != nil:
			if b, ok := c.builds[name]; ok && ours && rep.Failed[name] == nil {
				// Our bytes landed over a package another publisher had
				// indexed first (both passed the existence check).
				rep.Failed[name] = fmt.Errorf("%w (another publisher indexed sha256 %s first; this build %s was stored after it)",
					ErrContentDiffers, cv.Digest, b.sum())
			}
			p.mismatch(ctx, cv, obj, sum, c, rep)
		default:
			md := (*chart.Metadata)(nil)
			if b, ok := c.builds[name]; ok && ours {
				md = b.Metadata
			} else {
				data, err := p.read(ctx, obj.Key, c)
				if err != nil {
					return false, fmt.Errorf("read %s: %w", name, err)
				}
				if md, err = describe(data, name); err != nil {
					p.cfg.Digests.Refuse(obj.Key, obj.Version, err.Error())
					p.log.Warn("stored package not indexed", "store", p.store.String(), "chart", name, "err", err)
					continue
				}
			}
			if Lookup(idx, md.Name, md.Version) != nil {
				// Indexed under a url that is not this file's: leave it.
				continue
			}
			if err := p.add(idx, md, name, sum); err != nil {
				return false, err
			}
			changed = true
			_, seen := p.cfg.Memory.indexed(md.Name, md.Version)
			switch {
			case ours:
				rep.Published = append(rep.Published, name)
			case seen:
				rep.Repaired = append(rep.Repaired, name)
			default:
				rep.Adopted = append(rep.Adopted, name)
			}
		}
	}
	for name := range claims {
		_, ok := slices.BinarySearchFunc(objs, name, func(o store.Object, name string) int {
			return strings.Compare(o.Key[len(p.prefix):], name)
		})
		if !ok {
			rep.Missing = append(rep.Missing, name)
		}
	}
	sort.Strings(rep.Missing)
	return changed, nil
}

// mismatch handles a stored package whose bytes do not match its index
// entry: an index edited by hand, a package this publisher can restore, or
// a modified package.
func (p *Publisher) mismatch(ctx context.Context, cv *Entry, obj store.Object, sum string, c *call, rep *Report) {
	name := path.Base(obj.Key)
	if first, ok := p.cfg.Memory.indexed(cv.Name, cv.Version); ok && first != cv.Digest && first == sum {
		rep.Edited = append(rep.Edited, name)
		return
	}
	from, err := p.restore(ctx, cv, obj, c)
	if err != nil {
		p.log.Warn("restore package", "store", p.store.String(), "chart", name, "err", err)
	}
	if from == "" {
		rep.Modified = append(rep.Modified, name)
		return
	}
	p.log.Warn("stored package differed from its index digest: restored the indexed bytes",
		"store", p.store.String(), "chart", name, "from", from, "stored", sum, "digest", cv.Digest)
	rep.Restored = append(rep.Restored, name)
}

// restore puts the indexed bytes of a replaced package back: from this
// call's own build when it has exactly the indexed digest, else from the
// versions the store kept (store.Versioned). It returns where the bytes
// came from, or "" if it could not restore them.
func (p *Publisher) restore(ctx context.Context, cv *Entry, obj store.Object, c *call) (string, error) {
	name := path.Base(obj.Key)
	if b, ok := c.builds[name]; ok && b.sum() == cv.Digest && b.Metadata.Name == cv.Name && b.Metadata.Version == cv.Version {
		data, err := b.bytes(ctx)
		if err == nil {
			_, err = p.store.Replace(ctx, obj.Key, data, obj.Version)
		}
		if err == nil {
			return "this build", nil
		}
		return "", err
	}
	v, ok := store.AsVersioned(p.store)
	if !ok {
		return "", nil
	}
	done, err := v.RestoreVersion(ctx, obj.Key, func(data []byte) bool { return digest(data) == cv.Digest })
	if err != nil || !done {
		return "", err
	}
	return "the store's kept versions", nil
}

// chartOf reads a package's Chart.yaml.
func chartOf(data []byte) (*chart.Metadata, error) {
	ch, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not a chart archive: %w", err)
	}
	return ch.Metadata, nil
}

// describe reads a stored package's Chart.yaml. The package must be named
// as helm names it, so that its url and its metadata agree.
func describe(data []byte, file string) (*chart.Metadata, error) {
	md, err := chartOf(data)
	if err != nil {
		return nil, err
	}
	if want := Filename(md.Name, md.Version); want != file {
		return nil, fmt.Errorf("its Chart.yaml says %s", want)
	}
	return md, nil
}

func (p *Publisher) add(idx *Index, md *chart.Metadata, name, sum string) error {
	if err := idx.MustAdd(md, name, p.cfg.BaseURL, sum); err != nil {
		return fmt.Errorf("index %s: %w", name, err)
	}
	// MustAdd stamps time.Now; use the publisher's clock.
	es := idx.charts[md.Name]
	es[len(es)-1].added.Created = p.now()
	return nil
}

// storedDigest returns the hex sha256 of a stored object: from this call's
// reads, from the cache when the object's version is unchanged, else by
// reading it.
func (p *Publisher) storedDigest(ctx context.Context, obj store.Object, c *call) (string, error) {
	if b, ok := c.data[obj.Key]; ok {
		return digest(b), nil
	}
	if sum, ok := p.cfg.Digests.Lookup(obj.Key, obj.Version); ok {
		return sum, nil
	}
	b, err := p.read(ctx, obj.Key, c)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path.Base(obj.Key), err)
	}
	return digest(b), nil
}

// withCreated returns listed with the objects created since it was taken,
// as the store describes them now; nil if listed is nil or one of them
// cannot be looked up (the caller lists again).
func (p *Publisher) withCreated(ctx context.Context, listed []store.Object) []store.Object {
	if listed == nil || len(p.created) == 0 {
		return listed
	}
	byKey := make(map[string]int, len(listed))
	for i, o := range listed {
		byKey[o.Key] = i
	}
	out := slices.Clone(listed)
	for _, key := range p.created {
		if _, ok := byKey[key]; ok {
			// Listed already: a Create on it found it there (the store
			// is append-only) or, on a store without atomic create, this
			// call read back what it wrote, and uses those bytes.
			continue
		}
		r, obj, err := p.store.Open(ctx, key)
		if errors.Is(err, store.ErrNotExist) {
			continue // its Create failed
		}
		if err != nil {
			return nil
		}
		r.Close()
		byKey[key] = len(out)
		out = append(out, obj)
	}
	return out
}
