package dashboard_test

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/runnel-io/runnel/services/lagmon/config"
	"github.com/runnel-io/runnel/services/lagmon/dashboard"
	"github.com/runnel-io/runnel/services/lagmon/evaluate"
	"github.com/runnel-io/runnel/services/lagmon/httpapi"
	"github.com/runnel-io/runnel/services/lagmon/window"
)

// chromium finds a headless-capable browser; without one the test fails
// under CI=true (CI installs Debian's chromium) and is skipped elsewhere.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium on PATH: the dashboard's browser test needs it (apt-get install -y chromium)")
	}
	t.Skip("no chromium on PATH (apt-get install -y chromium)")
	return ""
}

// TestDashboardInBrowser loads the page in headless Chromium and checks
// that the groups are listed with their statuses and that the lag chart is
// drawn: one line per partition plus the total.
func TestDashboardInBrowser(t *testing.T) {
	exe := chromium(t)
	cfg, err := config.Parse("[cluster.local]\nservers=[\"127.0.0.1:9092\"]\n")
	if err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(1_700_000_000_000)
	clock := func() time.Time { return now }
	store := window.New(window.Config{Intervals: 4, Now: clock}, "local")
	sampler := dashboard.NewSampler(store, evaluate.Config{}, time.Second, 100, clock)
	// billing falls behind on both partitions of orders; audit keeps up.
	for i := int64(1); i <= 8; i++ {
		now = now.Add(time.Second)
		ms := now.UnixMilli()
		for p := int32(0); p < 2; p++ {
			store.AddLogEnd("local", "orders", p, 2, i*100+int64(p)*30, ms)
			store.AddCommit("local", "billing", "orders", p, i*60, i, ms)
		}
		store.AddLogEnd("local", "audit", 0, 1, i*10, ms)
		store.AddCommit("local", "audit-reader", "audit", 0, i*10, i, ms)
		sampler.Sample()
	}
	api := httpapi.New(httpapi.Options{Store: store, Config: cfg, Now: clock, Dashboard: dashboard.Handler(sampler)})
	srv := httptest.NewServer(api)
	defer srv.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("headless", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()

	err = chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/dashboard/?refresh=300#local/billing"),
		chromedp.WaitVisible(chromedp.CSS(`#groups tbody tr[data-group="audit-reader"]`)),
		chromedp.WaitReady(chromedp.CSS(`#chart polyline[data-series="total"]`)),
		chromedp.WaitReady(chromedp.CSS(`#clusters span[data-cluster="local"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	count := func(sel string) int {
		t.Helper()
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+"`"+sel+"`"+`).length`))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	attr := func(sel, name string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
		if err != nil {
			t.Fatal(err)
		}
		return v.Value
	}
	rows, statuses, clusters := count(`#groups tbody tr`), count(`#groups tbody tr[data-status]`), count(`#clusters span`)
	billingStatus := attr(`#groups tbody tr[data-group="billing"]`, "data-status")
	badge := attr(`#groups tbody tr[data-group="billing"] .badge`, "class")
	totalPoints := attr(`#chart polyline[data-series="total"]`, "points")
	partitionLines, legend := count(`#chart polyline.partition`), count(`#legend li`)
	title, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#chart-title`)))
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if rows != 2 || statuses != 2 || clusters != 1 {
		t.Errorf("%d rows (%d with a status), %d clusters; want 2, 2, 1", rows, statuses, clusters)
	}
	if billingStatus != "WARN" || !strings.Contains(badge, "status-WARN") {
		t.Errorf("billing shows %q with badge class %q, want WARN", billingStatus, badge)
	}
	if !strings.Contains(title, "local / billing") {
		t.Errorf("chart title %q", title)
	}
	if pts := strings.Fields(totalPoints); len(pts) != 8 {
		t.Errorf("total line has %d points, want one per sample (8): %q", len(pts), totalPoints)
	}
	if partitionLines != 2 || legend != 3 {
		t.Errorf("%d partition lines and %d legend entries, want 2 and 3", partitionLines, legend)
	}
	if dir := os.Getenv("LAGMON_SCREENSHOT_DIR"); dir != "" {
		_ = os.WriteFile(dir+"/dashboard.png", shot, 0o644)
	}
}
