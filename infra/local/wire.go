package local

import (
	"context"
	"fmt"
	"strings"

	"github.com/dronetrack/dronetrack/core/store"
	"github.com/dronetrack/dronetrack/core/store/storeurl"
)

// ExtraFunctionConfig is configuration beyond the shared keys that the
// one-machine functions need: alerts may call webhooks on this machine or
// the LAN (the cluster refuses private addresses). Its mail server and the
// website's URL come from the environment `up` runs in (SMTP_HOST and the
// other SMTP_* settings, SITE_URL; functionEnv in funcconfig.go reads them;
// unset: email channels report that no mail server is set).
func ExtraFunctionConfig(string) map[string]string {
	return map[string]string{"WEBHOOK_ALLOW_PRIVATE": "true"}
}

// OpenStore opens a store URL through storeurl, which shares one handle per
// bolt path inside the process (the functions open the same URL). A bolt
// file locked by another process means a running up.
func OpenStore(ctx context.Context, url string) (store.Store, error) {
	st, err := storeurl.Open(ctx, url)
	if err != nil {
		if strings.HasPrefix(url, "bolt://") && strings.Contains(err.Error(), "locked") {
			return nil, fmt.Errorf("dronetrack up is running on this data dir (%w); stop it, or keep it running and retry: "+
				"admin commands use its admin endpoint when %s answers", err, AdminFile)
		}
		return nil, fmt.Errorf("open store: %w", err)
	}
	return st, nil
}
