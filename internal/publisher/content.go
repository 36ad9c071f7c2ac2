package publisher

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
)

// maxContent bounds the unpacked size of a package compared by
// sameContent, so a hostile stored package cannot exhaust memory.
const maxContent = 256 << 20

// sameContent reports whether two chart archives hold the same files with
// the same bytes: what a chart is, whatever the tool that packaged it
// (entry order, times, modes and compression differ between helm package
// and chartsync; Chart.yaml is written from the same metadata by both).
func sameContent(a, b []byte) (bool, error) {
	fa, err := archiveFiles(a)
	if err != nil {
		return false, err
	}
	fb, err := archiveFiles(b)
	if err != nil {
		return false, err
	}
	return maps.Equal(fa, fb), nil
}

// archiveFiles maps each regular file of a .tgz to the sha256 of its bytes.
func archiveFiles(data []byte) (map[string][32]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not a chart archive: %w", err)
	}
	tr := tar.NewReader(zr)
	files := map[string][32]byte{}
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("not a chart archive: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		hash := sha256.New()
		n, err := io.Copy(hash, io.LimitReader(tr, maxContent-total+1))
		if err != nil {
			return nil, fmt.Errorf("not a chart archive: %w", err)
		}
		if total += n; total > maxContent {
			return nil, fmt.Errorf("archive unpacks to more than %d bytes", maxContent)
		}
		files[h.Name] = [32]byte(hash.Sum(nil))
	}
}
