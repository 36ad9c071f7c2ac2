package gitsrc

import (
	"encoding/hex"

	"github.com/go-git/go-git/v5/plumbing"
)

// parseHash parses a full 40-digit hex object id.
func parseHash(s string) (plumbing.Hash, bool) {
	var h plumbing.Hash
	if len(s) != 2*len(h) {
		return h, false
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, false
	}
	return h, true
}
