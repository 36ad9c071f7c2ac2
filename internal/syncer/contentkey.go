package syncer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"path"
	"runtime"
	"strings"

	"sigs.k8s.io/yaml"
)

// hasher is what the build cache needs of the tree: gitsrc's FS names the
// content of any path by its git object id.
type hasher interface {
	Hash(name string) (string, error)
}

// maxKeyDepth bounds how many symlinked directories and file://
// dependencies deep contentKey follows; deeper charts are keyed by commit.
const maxKeyDepth = 8

// contentKey returns a key for everything a build of the chart in dir can
// read: the git ids of the chart directory, of the target of every
// symlink inside it (followed into linked directories) and of the
// directory of every file:// dependency declared by a Chart.yaml or
// requirements.yaml in it, recursively, and the Go release that builds
// (gzip's output may change between releases). Equal keys mean equal
// packages, so a chart that did not change is not built again at a new
// commit. It returns "" when fsys cannot name content (not a git tree) or
// something on the way cannot be resolved (a dangling, escaping or looping
// link, too deep): the caller then keys by commit and directory, and the
// build reports the problem.
func contentKey(fsys fs.FS, dir string) string {
	h, ok := fsys.(hasher)
	if !ok {
		return ""
	}
	k := &keyer{fsys: fsys, h: h, sum: sha256.New(), seen: map[string]bool{}}
	fmt.Fprintf(k.sum, "chartsync build key 1 %s\n", runtime.Version())
	if err := k.dir(dir, 0); err != nil {
		return ""
	}
	return hex.EncodeToString(k.sum.Sum(nil))
}

type keyer struct {
	fsys fs.FS
	h    hasher
	sum  hash.Hash
	seen map[string]bool // directories keyed already, by path and id
}

var errTooDeep = errors.New("too deep")

// dir adds the directory name (already resolved or not) to the key.
func (k *keyer) dir(name string, depth int) error {
	if depth > maxKeyDepth {
		return errTooDeep
	}
	id, err := k.h.Hash(name)
	if err != nil {
		return err
	}
	if k.seen[name+" "+id] {
		return nil
	}
	k.seen[name+" "+id] = true
	fmt.Fprintf(k.sum, "dir %q %s\n", name, id)
	return fs.WalkDir(k.fsys, name, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			id, err := k.h.Hash(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(k.sum, "link %q %s\n", p, id)
			if fi, err := fs.Stat(k.fsys, p); err != nil {
				return err
			} else if fi.IsDir() {
				return k.dir(p, depth+1)
			}
		case !d.IsDir() && (d.Name() == "Chart.yaml" || d.Name() == "requirements.yaml"):
			return k.fileDeps(p, depth)
		}
		return nil
	})
}

// fileDeps adds the file:// dependencies a Chart.yaml or requirements.yaml
// declares. A file that does not parse adds nothing: the build fails on it.
func (k *keyer) fileDeps(name string, depth int) error {
	b, err := fs.ReadFile(k.fsys, name)
	if err != nil {
		return err
	}
	var f struct {
		Dependencies []struct {
			Repository string `json:"repository"`
		} `json:"dependencies"`
	}
	if yaml.Unmarshal(b, &f) != nil {
		return nil
	}
	for _, d := range f.Dependencies {
		rel, ok := strings.CutPrefix(d.Repository, "file://")
		if !ok {
			continue
		}
		dep := path.Join(path.Dir(name), rel)
		if !fs.ValidPath(dep) {
			return fmt.Errorf("dependency %s leaves the tree", d.Repository)
		}
		fmt.Fprintf(k.sum, "dep %q %q\n", name, d.Repository)
		if err := k.dir(dep, depth+1); err != nil {
			return err
		}
	}
	return nil
}
