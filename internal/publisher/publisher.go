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
	// ErrStoredDiffers: the store already holds different bytes under the
	// package's name (another publisher, or a replaced object).
	ErrStoredDiffers = errors.New("stored package differs")
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
}

// Publisher writes packages and the index of one repository.
type Publisher struct {
	store store.Store
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
}

// New returns a Publisher for the repository at cfg.Prefix in s.
func New(s store.Store, cfg Config, log *slog.Logger) *Publisher {
	if cfg.Digests == nil {
		cfg.Digests = &DigestCache{}
	}
	return &Publisher{store: s, cfg: cfg, log: log, now: time.Now}
}

func (p *Publisher) key(name string) string {
	if p.cfg.Prefix == "" {
		return name
	}
	return p.cfg.Prefix + "/" + name
}

// Index returns the repository's index and its store version. A missing
// index is an empty index with version "". Any other failure wraps
// ErrIndexUnreadable or the store's error; an index larger than
// Config.MaxIndexSize is unreadable, refused before it is read.
func (p *Publisher) Index(ctx context.Context) (*Index, string, error) {
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

// Package is one chart version to publish.
type Package struct {
	Metadata   *chart.Metadata
	Data       []byte
	Provenance []byte // the .prov file; nil for an unsigned package
}

// Filename is the package's file name in the repository, as helm names it.
func Filename(name, version string) string { return name + "-" + version + ".tgz" }

// Report is what one Publish did.
type Report struct {
	// Failed maps a package file name to why it was not published.
	Failed map[string]error
	// Published lists the package files now in the index that this call
	// stored and verified.
	Published []string
	// Repaired lists stored packages that were missing from the index and
	// were added back from the stored bytes.
	Repaired []string
	// Missing lists index entries whose package is not in the store.
	Missing []string
	// Modified lists stored packages whose bytes no longer match the digest
	// in the index: they were replaced after publication.
	Modified []string
	// Entries is the number of chart versions in the index afterwards.
	Entries int
	// Wrote is true when index.yaml was written.
	Wrote bool
}

// Publish stores the packages, then merges them (and any stored package
// the index lacks) into index.yaml. A package whose name is taken by other
// bytes fails alone. Publish returns an error only when the repository
// itself could not be updated (index unreadable, store unreachable); the
// report then holds the packages that failed alone, and nothing else: no
// package counts as published until the index that lists it is written.
func (p *Publisher) Publish(ctx context.Context, pkgs []Package) (*Report, error) {
	rep := &Report{Failed: map[string]error{}}
	stored := map[string]string{} // file name -> digest of the stored bytes
	for _, pkg := range pkgs {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		name := Filename(pkg.Metadata.Name, pkg.Metadata.Version)
		if max := p.cfg.maxPackageSize(); int64(len(pkg.Data)) > max {
			rep.Failed[name] = fmt.Errorf("package %w (max_package_size)", store.TooLarge(name, int64(len(pkg.Data)), max))
			continue
		}
		if err := p.createProvenance(ctx, name, pkg.Provenance); err != nil {
			if !errors.Is(err, store.ErrInvalidKey) {
				return rep, err
			}
			rep.Failed[name] = err // a name this store cannot hold fails alone
			continue
		}
		digest, err := p.create(ctx, name, pkg.Data)
		if err != nil {
			if !errors.Is(err, ErrStoredDiffers) && !errors.Is(err, store.ErrExist) && !errors.Is(err, store.ErrInvalidKey) {
				return rep, err // the store's error names the key
			}
			rep.Failed[name] = err
			continue
		}
		stored[name] = digest
	}
	if err := p.updateIndex(ctx, pkgs, stored, rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// create stores one package unless the same bytes are stored already, and
// returns the sha256 of what the store holds afterwards. Where the store
// cannot create atomically, it reads back what it wrote.
func (p *Publisher) create(ctx context.Context, name string, data []byte) (string, error) {
	ours := digest(data)
	err := p.store.Create(ctx, p.key(name), data)
	if err != nil && !errors.Is(err, store.ErrExist) {
		return "", err
	}
	if err == nil && p.store.Atomic() {
		return ours, nil
	}
	b, ver, gerr := p.store.Get(ctx, p.key(name))
	if gerr != nil {
		return "", gerr
	}
	theirs := digest(b)
	// The reconcile that follows needs this digest: spare it a second read.
	p.cfg.Digests.Put(p.key(name), ver, theirs)
	if theirs != ours {
		return "", fmt.Errorf("%w: %s holds sha256 %s, this build is %s", ErrStoredDiffers, name, theirs, ours)
	}
	return ours, nil
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
// index.yaml with a guarded replace, retrying on conflict.
func (p *Publisher) updateIndex(ctx context.Context, pkgs []Package, stored map[string]string, rep *Report) error {
	meta := map[string]*chart.Metadata{}
	for _, pkg := range pkgs {
		meta[Filename(pkg.Metadata.Name, pkg.Metadata.Version)] = pkg.Metadata
	}
	for attempt := 1; ; attempt++ {
		idx, ver, err := p.Index(ctx)
		if err != nil {
			return err
		}
		objs, err := p.packages(ctx)
		if err != nil {
			return err
		}
		// The report says what is in the index only once it is there.
		next := &Report{Failed: rep.Failed}
		changed, err := p.merge(ctx, idx, objs, meta, stored, next)
		if err != nil {
			return err
		}
		next.Entries = Entries(idx)
		if !changed {
			*rep = *next
			p.saveDigests()
			return nil
		}
		idx.Generated = p.now()
		b, err := idx.Marshal()
		if err != nil {
			return err
		}
		_, err = p.store.Replace(ctx, p.key("index.yaml"), b, ver)
		if err == nil && !p.store.Atomic() {
			err = p.verify(ctx, idx)
		}
		if err == nil {
			next.Wrote = true
			*rep = *next
			p.saveDigests()
			return nil
		}
		if !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotExist) {
			return fmt.Errorf("write index: %w", err)
		}
		if attempt == maxIndexAttempts {
			return fmt.Errorf("write index: gave up after %d attempts: %w", attempt, err)
		}
		p.log.Debug("index changed concurrently, merging again", "store", p.store.String(), "attempt", attempt)
		if err := store.Backoff(ctx, 100*time.Millisecond, 2*time.Second, attempt); err != nil {
			return err
		}
	}
}

// verify re-reads the index after an unguarded write and reports a
// conflict if a concurrent writer dropped any of the entries just written.
func (p *Publisher) verify(ctx context.Context, want *Index) error {
	got, _, err := p.Index(ctx)
	if err != nil {
		return err
	}
	for name, cvs := range want.Entries {
		for _, cv := range cvs {
			if Lookup(got, name, cv.Version) == nil {
				return fmt.Errorf("verify index: %s %s missing after write: %w", name, cv.Version, store.ErrConflict)
			}
		}
	}
	return nil
}

// packages lists the package files directly under the prefix (ChartMuseum's
// depth-1 layout), by file name.
func (p *Publisher) packages(ctx context.Context) (map[string]store.Object, error) {
	prefix := p.key("")
	objs, err := p.store.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list packages: %w", err)
	}
	m := map[string]store.Object{}
	for _, o := range objs {
		name := strings.TrimPrefix(o.Key, prefix)
		if strings.HasSuffix(name, ".tgz") && !strings.Contains(name, "/") {
			m[name] = o
		}
	}
	return m, nil
}

// merge adds to idx every stored package it lacks, described from the
// stored bytes, and checks that each entry's digest matches the stored
// bytes. It never removes or rewrites an existing entry. It reports whether
// idx changed.
func (p *Publisher) merge(ctx context.Context, idx *Index, objs map[string]store.Object,
	meta map[string]*chart.Metadata, stored map[string]string, rep *Report) (bool, error) {
	byFile := filenames(idx)
	names := make([]string, 0, len(objs))
	for name := range objs {
		names = append(names, name)
	}
	sort.Strings(names)
	changed := false
	for _, name := range names {
		cv := byFile[name]
		if cv != nil && cv.Digest == "" {
			continue // an entry from another tool: nothing to compare with
		}
		if max := p.cfg.maxPackageSize(); objs[name].Size > max {
			p.log.Warn("stored package not read", "store", p.store.String(), "chart", name,
				"err", fmt.Errorf("%w (max_package_size)", store.TooLarge(objs[name].Key, objs[name].Size, max)))
			continue
		}
		sum, data, err := p.storedDigest(ctx, objs[name])
		if err != nil {
			return false, err
		}
		_, ours := stored[name]
		ours = ours && stored[name] == sum
		switch {
		case cv != nil && cv.Digest != sum:
			rep.Modified = append(rep.Modified, name)
		case cv != nil && ours:
			rep.Published = append(rep.Published, name) // indexed by a concurrent publisher
		case cv == nil:
			md := meta[name]
			if !ours {
				if md, err = p.describe(ctx, objs[name], data); err != nil {
					p.log.Warn("stored package not indexed", "store", p.store.String(), "chart", name, "err", err)
					continue
				}
			}
			if err := p.add(idx, md, name, sum); err != nil {
				return false, err
			}
			changed = true
			if ours {
				rep.Published = append(rep.Published, name)
			} else {
				rep.Repaired = append(rep.Repaired, name)
			}
		}
	}
	for name := range byFile {
		if _, ok := objs[name]; !ok {
			rep.Missing = append(rep.Missing, name)
		}
	}
	sort.Strings(rep.Missing)
	return changed, nil
}

// describe reads a stored package's Chart.yaml. The package must be named
// as helm names it, so that its url and its metadata agree.
// A verdict is remembered by the object's version, so an object that is
// not a chart is not read again until it changes.
func (p *Publisher) describe(ctx context.Context, obj store.Object, data []byte) (*chart.Metadata, error) {
	if reason, ok := p.cfg.Digests.Refused(obj.Key, obj.Version); ok {
		return nil, errors.New(reason)
	}
	if data == nil {
		var err error
		if data, _, err = p.store.Get(ctx, obj.Key); err != nil {
			return nil, err
		}
	}
	ch, err := loader.LoadArchive(bytes.NewReader(data))
	if err != nil {
		err = fmt.Errorf("not a chart archive: %w", err)
	} else if want := Filename(ch.Metadata.Name, ch.Metadata.Version); want != path.Base(obj.Key) {
		err = fmt.Errorf("its Chart.yaml says %s", want)
	}
	if err != nil {
		p.cfg.Digests.Refuse(obj.Key, obj.Version, err.Error())
		return nil, err
	}
	return ch.Metadata, nil
}

func (p *Publisher) add(idx *Index, md *chart.Metadata, name, sum string) error {
	if err := idx.MustAdd(md, name, p.cfg.BaseURL, sum); err != nil {
		return fmt.Errorf("index %s: %w", name, err)
	}
	// MustAdd stamps time.Now; use the publisher's clock.
	cvs := idx.Entries[md.Name]
	cvs[len(cvs)-1].Created = p.now()
	return nil
}

// storedDigest returns the hex sha256 of a stored object, from the cache
// when the object's version is unchanged, else by reading it (and then
// also returns the bytes).
func (p *Publisher) storedDigest(ctx context.Context, obj store.Object) (string, []byte, error) {
	if sum, ok := p.cfg.Digests.Lookup(obj.Key, obj.Version); ok {
		return sum, nil, nil
	}
	data, ver, err := p.store.Get(ctx, obj.Key)
	if err != nil {
		return "", nil, fmt.Errorf("read %s: %w", path.Base(obj.Key), err)
	}
	sum := digest(data)
	p.cfg.Digests.Put(obj.Key, ver, sum)
	return sum, data, nil
}
