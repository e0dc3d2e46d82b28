package image

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/eddybroker/eddy/appliance/slots"
)

// ReadUKI returns the unified kernel image of a built image (both slots
// hold the same one) and its os-release: what `eddy image push` sends to
// a running box.
func ReadUKI(ctx context.Context, img string) ([]byte, map[string]string, error) {
	parts, err := imagePartitions(img, ESPName)
	if err != nil {
		return nil, nil, err
	}
	work, err := os.MkdirTemp("", "eddy-image-uki-*")
	if err != nil {
		return nil, nil, fmt.Errorf("image: %w", err)
	}
	defer os.RemoveAll(work)
	out := filepath.Join(work, "uki.efi")
	src := "::/" + slots.UKIDir + "/" + slots.EntryID(slots.Names[0])
	if err := tool(ctx, "mcopy", "-n", "-i", fmt.Sprintf("%s@@%d", img, parts[0].Offset), src, out); err != nil {
		return nil, nil, fmt.Errorf("image %s: reading its kernel image: %w (mtools is needed: apt-get install mtools)", img, err)
	}
	uki, err := os.ReadFile(out)
	if err != nil {
		return nil, nil, fmt.Errorf("image: %w", err)
	}
	osrel, err := slots.ReadOSRelease(bytes.NewReader(uki))
	if err != nil {
		return nil, nil, fmt.Errorf("image %s: %w", img, err)
	}
	return uki, osrel, nil
}
