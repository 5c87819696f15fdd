package manage

import (
	"context"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/plb/plb/internal/testhttp"
)

// TestStatusPageRenders loads the status page in headless Chromium and
// checks the screenshot shows the page: not blank, with the green of an up
// node and the red of a down one. Without Chromium the test is skipped,
// except under CI (CI=true), where .ci/run installs it. Set
// PLB_SCREENSHOT=FILE to keep the picture.
func TestStatusPageRenders(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	browser := testhttp.Browser(t)
	addr := startConsole(t, New("mgmt", testRuntime(t)))
	shot := filepath.Join(t.TempDir(), "status.png")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--user-data-dir="+t.TempDir(), "--screenshot="+shot, "--window-size=1280,900", "http://"+addr+"/")
	cmd.WaitDelay = 5 * time.Second // helpers that keep the output open
	if out, err := cmd.CombinedOutput(); err != nil {
		if _, serr := os.Stat(shot); serr != nil {
			t.Fatalf("chromium: %v\n%s", err, out)
		}
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 900 {
		t.Errorf("screenshot is %v", b)
	}
	ink, up, down := 0, 0, 0
	green := color.RGBA{0xc8, 0xf0, 0xc8, 0xff}
	red := color.RGBA{0xf4, 0xb0, 0xb0, 0xff}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			switch {
			case near(c, green):
				up++
			case near(c, red):
				down++
			case c.R < 0x80 && c.G < 0x80 && c.B < 0x80:
				ink++ // text
			}
		}
	}
	if ink < 2000 || up < 2000 || down < 500 {
		t.Errorf("screenshot looks blank or uncoloured: %d dark, %d green, %d red pixels", ink, up, down)
	}
	if keep := os.Getenv("PLB_SCREENSHOT"); keep != "" {
		data, _ := os.ReadFile(shot)
		if err := os.WriteFile(keep, data, 0o644); err != nil {
			t.Error(err)
		}
	}
}

// near reports whether two colours match within a little rendering noise.
func near(a, b color.RGBA) bool {
	d := func(x, y uint8) int {
		if x > y {
			return int(x - y)
		}
		return int(y - x)
	}
	return d(a.R, b.R) <= 4 && d(a.G, b.G) <= 4 && d(a.B, b.B) <= 4
}
