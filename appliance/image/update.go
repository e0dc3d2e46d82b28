package image

import (
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
	f, err := os.Open(img)
	if err != nil {
		return nil, nil, fmt.Errorf("image: %w", err)
	}
	parts, err := ReadPartitions(f)
	f.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("image %s: %w", img, err)
	}
	var esp *Partition
	for i := range parts {
		if parts[i].Name == ESPName {
			esp = &parts[i]
		}
	}
	if esp == nil {
		return nil, nil, fmt.Errorf("image %s: no %s partition; is this an eddy image?", img, ESPName)
	}
	work, err := os.MkdirTemp("", "eddy-image-uki-*")
	if err != nil {
		return nil, nil, fmt.Errorf("image: %w", err)
	}
	defer os.RemoveAll(work)
	out := filepath.Join(work, "uki.efi")
	src := "::/" + slots.UKIDir + "/" + slots.EntryID(slots.Names[0])
	if err := tool(ctx, "mcopy", "-n", "-i", fmt.Sprintf("%s@@%d", img, esp.Offset), src, out); err != nil {
		return nil, nil, fmt.Errorf("image %s: reading its kernel image: %w (mtools is needed: apt-get install mtools)", img, err)
	}
	uki, err := os.ReadFile(out)
	if err != nil {
		return nil, nil, fmt.Errorf("image: %w", err)
	}
	f2, err := os.Open(out)
	if err != nil {
		return nil, nil, fmt.Errorf("image: %w", err)
	}
	defer f2.Close()
	osrel, err := slots.ReadOSRelease(f2)
	if err != nil {
		return nil, nil, fmt.Errorf("image %s: %w", img, err)
	}
	return uki, osrel, nil
}
