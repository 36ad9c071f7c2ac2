package syncer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"golang.org/x/sync/errgroup"

	"github.com/chartsync/chartsync/internal/config"
	"github.com/chartsync/chartsync/internal/gitsrc"
	"github.com/chartsync/chartsync/internal/publisher"
	"github.com/chartsync/chartsync/internal/publisher/store"
	"github.com/chartsync/chartsync/internal/verify"
)

// Repositories returns the names of the configured repositories, in
// configuration order.
func (s *Syncer) Repositories() []string {
	var out []string
	for _, r := range s.cfg.Repositories {
		out = append(out, r.Name)
	}
	return out
}

// repositoryConfig returns the [[repository]] called name.
func (s *Syncer) repositoryConfig(name string) (config.Repository, error) {
	for _, r := range s.cfg.Repositories {
		if r.Name == name {
			return r, nil
		}
	}
	return config.Repository{}, fmt.Errorf("no repository %q in the configuration", name)
}

// publisherOf returns the publisher of repository r.
func (s *Syncer) publisherOf(r config.Repository) *publisher.Publisher {
	return publisher.New(s.stores[r.Store], publisher.Config{Prefix: r.Prefix, BaseURL: r.BaseURL,
		Digests: s.digests[r.Name], Memory: s.memory[r.Name],
		MaxIndexSize: int64(r.MaxIndexSize), MaxPackageSize: int64(r.MaxPackageSize)}, s.log)
}

// history fetches git and opens the repository for reading its history;
// the caller closes it.
func (s *Syncer) history(ctx context.Context) (*gitsrc.Tree, *gitsrc.Repo, error) {
	tree, err := s.fetch(ctx)
	if err != nil {
		return nil, nil, err
	}
	repo, err := gitsrc.Open(filepath.Join(s.cfg.StateDir, "git"))
	if err != nil {
		return nil, nil, fmt.Errorf("git: %w", err)
	}
	return tree, repo, nil
}

// Verify fetches git, reads the index of repository and checks each entry
// against the first-parent history of the branch (see verify.Run). It
// writes nothing to the store.
func (s *Syncer) Verify(ctx context.Context, repository string) (string, []verify.Entry, verify.Stats, error) {
	r, err := s.repositoryConfig(repository)
	if err != nil {
		return "", nil, verify.Stats{}, err
	}
	tree, repo, err := s.history(ctx)
	if err != nil {
		return "", nil, verify.Stats{}, err
	}
	defer repo.Close()
	idx, _, err := s.publisherOf(r).Index(ctx)
	if err != nil {
		return tree.Commit, nil, verify.Stats{}, fmt.Errorf("repository %s: store %s: %w", r.Name, r.Store, err)
	}
	entries, st, err := verify.Run(ctx, repo, tree.Commit, r.Charts, idx, contentKey, s.log)
	if err != nil {
		return tree.Commit, nil, st, err
	}
	if err := s.checkStored(ctx, r, entries); err != nil {
		return tree.Commit, nil, st, fmt.Errorf("repository %s: store %s: %w", r.Name, r.Store, err)
	}
	return tree.Commit, entries, st, nil
}

// checkStored reads each entry's stored package (in parallel, streaming)
// and marks the entry Differs when the stored bytes are not the indexed
// ones: what users download is what must come from git. A store error
// other than a missing package is returned.
func (s *Syncer) checkStored(ctx context.Context, r config.Repository, entries []verify.Entry) error {
	st := s.stores[r.Store]
	var g errgroup.Group
	g.SetLimit(8)
	for i := range entries {
		e := &entries[i]
		g.Go(func() error {
			key := publisher.Filename(e.Name, e.Version)
			if r.Prefix != "" {
				key = r.Prefix + "/" + key
			}
			rc, _, err := st.Open(ctx, key)
			if errors.Is(err, store.ErrNotExist) {
				e.Status, e.Reason = verify.Differs, "the package is not in the store"
				return nil
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", key, err)
			}
			h := sha256.New()
			_, err = io.Copy(h, rc)
			if cerr := rc.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("read %s: %w", key, err)
			}
			if sum := hex.EncodeToString(h.Sum(nil)); sum != e.Digest {
				e.Status, e.Reason = verify.Differs, fmt.Sprintf("the stored package has sha256 %s, not the indexed one", sum)
			}
			return nil
		})
	}
	return g.Wait()
}
