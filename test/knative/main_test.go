package knative

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dronetrack/dronetrack/core/accounts"
	"github.com/dronetrack/dronetrack/core/keys"
	"github.com/dronetrack/dronetrack/core/store"
	_ "github.com/dronetrack/dronetrack/core/store/firestore" // registers firestore:// with storeurl
	"github.com/dronetrack/dronetrack/core/store/storeurl"
	"github.com/dronetrack/dronetrack/core/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var (
	buildOnce sync.Once
	builtBins map[string]string
	buildErr  error
	buildTime time.Duration
)

// bins host-builds every function once per test binary.
func bins(t testing.TB) map[string]string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		builtBins, buildErr = BuildAll(ctx, root)
		buildTime = time.Since(start)
	})
	if buildErr != nil {
		t.Fatalf("host build: %v", buildErr)
	}
	return builtBins
}

// fixture is the shared state of one test: its own Firestore project on
// the emulator, its own Redis, a tenant with a drone and a logged-in owner.
type fixture struct {
	project, redis, pepper string
	st                     store.Store
	tenant, drone, key     string
	session, csrf          string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	testenv.Firestore(t) // sets FIRESTORE_EMULATOR_HOST, which env passes on
	f := &fixture{project: testenv.NewProjectID(t), pepper: randHex(24), tenant: "t-" + randHex(4), drone: "d-" + randHex(4)}
	f.redis, _ = testenv.StartRedis(t)
	ctx := context.Background()
	st, err := storeurl.Open(ctx, "firestore://"+f.project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	if f.key, err = keys.Generate(); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := st.CreateTenant(ctx, store.Tenant{ID: f.tenant, Name: "Fixture", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	f.addDrone(t, f.drone, f.key)
	uid := "u-" + randHex(4)
	if err := st.CreateUser(ctx, store.User{ID: uid, TenantID: f.tenant, Email: uid + "@example.test", Role: store.RoleOwner,
		PasswordHash: "unusable", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	f.session, f.csrf = randHex(16), randHex(16)
	if err := st.CreateSession(ctx, store.Session{ID: accounts.HashToken(f.session), UserID: uid, TenantID: f.tenant,
		CSRFHash: accounts.HashToken(f.csrf), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) addDrone(t *testing.T, id, key string) {
	t.Helper()
	if err := f.st.CreateDrone(context.Background(), store.Drone{ID: id, TenantID: f.tenant, Name: id,
		KeyHash: keys.Hash([]byte(f.pepper), key), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// env is every function's environment on this fixture, as the ConfigMap,
// the Secret and the emulator settings would give it.
func (f *fixture) env() []string {
	return []string{
		"STORE_URL=firestore://" + f.project,
		"CACHE_URL=redis://" + f.redis + "/0",
		"DRONE_KEY_PEPPER=" + f.pepper,
		"FIRESTORE_EMULATOR_HOST=" + os.Getenv("FIRESTORE_EMULATOR_HOST"),
		"LOG_LEVEL=warn",
	}
}

// authed adds the owner's session (and CSRF token) to a serve-map request.
func (f *fixture) authed(r *http.Request) *http.Request {
	r.AddCookie(&http.Cookie{Name: "dt_session", Value: f.session})
	r.Header.Set("X-CSRF-Token", f.csrf)
	return r
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// report is one telemetry report at ts, as a drone sends it.
func report(ts time.Time, lat float64) string {
	return `{"ts":"` + ts.UTC().Format(time.RFC3339Nano) + `","lat":` + ftoa(lat) + `,"lon":8.5,"alt":100,"battery":80}`
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
