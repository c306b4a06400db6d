// Package httpapi serves Burrow's v3 HTTP API over lagmon's windows, with
// Burrow's paths, JSON shapes and messages, so Burrow dashboards, exporters
// and scripts work unchanged:
//
//	GET    /burrow/admin                                   "GOOD"
//	GET    /burrow/admin/ready                             "READY" once every source has read its cluster
//	GET    /v3/kafka                                       cluster list
//	GET    /v3/kafka/{cluster}                             cluster module detail
//	GET    /v3/kafka/{cluster}/topic                       topic list
//	GET    /v3/kafka/{cluster}/topic/{topic}               newest offset of each partition
//	GET    /v3/kafka/{cluster}/topic/{topic}/consumers     groups consuming the topic
//	GET    /v3/kafka/{cluster}/consumer                    group list
//	GET    /v3/kafka/{cluster}/consumer/{group}            the group's stored windows
//	GET    /v3/kafka/{cluster}/consumer/{group}/status     evaluation, partitions worse than OK
//	GET    /v3/kafka/{cluster}/consumer/{group}/lag        evaluation, every partition
//	DELETE /v3/kafka/{cluster}/consumer/{group}            forget the group
//	GET    /v3/config[/storage|evaluator|cluster|consumer|notifier[/{name}]]
//
// Every JSON answer carries "error", "message" and "request" {"url","host"};
// unknown paths get Burrow's 404 body. Beyond Burrow, partition statuses
// carry lag_seconds and catchup_seconds.
package httpapi

import (
	"encoding/json"
	"net/http"
	"os"
	"time"

	"github.com/runnel-io/runnel/services/lagmon/config"
	"github.com/runnel-io/runnel/services/lagmon/evaluate"
	"github.com/runnel-io/runnel/services/lagmon/window"
)

// Options are what the API serves.
type Options struct {
	Store  *window.Store
	Config *config.Config
	// Listen is the HTTP address, reported by /v3/config.
	Listen string
	// Ready reports whether every source has read its cluster once.
	Ready func() bool
	// Metrics, when set, is served at /metrics.
	Metrics http.Handler
	// Dashboard, when set, is served under /dashboard/ (and / redirects
	// there).
	Dashboard http.Handler
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// API is the HTTP handler.
type API struct {
	o    Options
	eval evaluate.Config
	host string
	mux  *http.ServeMux
}

// New builds the API.
func New(o Options) *API {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Ready == nil {
		o.Ready = func() bool { return true }
	}
	host, _ := os.Hostname()
	a := &API{
		o:    o,
		eval: evaluate.Config{MinimumComplete: o.Config.Evaluator.MinimumComplete, AllowedLag: o.Config.Evaluator.AllowedLag},
		host: host,
		mux:  http.NewServeMux(),
	}
	m := a.mux
	m.HandleFunc("/", a.notFound)
	m.HandleFunc("GET /{$}", a.root)
	m.HandleFunc("GET /burrow/admin", a.admin)
	m.HandleFunc("GET /burrow/admin/ready", a.ready)
	m.HandleFunc("GET /v3/kafka", a.clusterList)
	m.HandleFunc("GET /v3/kafka/{cluster}", a.clusterDetail)
	m.HandleFunc("GET /v3/kafka/{cluster}/topic", a.topicList)
	m.HandleFunc("GET /v3/kafka/{cluster}/topic/{topic}", a.topicDetail)
	m.HandleFunc("GET /v3/kafka/{cluster}/topic/{topic}/consumers", a.topicConsumers)
	m.HandleFunc("GET /v3/kafka/{cluster}/consumer", a.consumerList)
	m.HandleFunc("GET /v3/kafka/{cluster}/consumer/{group}", a.consumerDetail)
	m.HandleFunc("GET /v3/kafka/{cluster}/consumer/{group}/status", a.consumerStatus(false))
	m.HandleFunc("GET /v3/kafka/{cluster}/consumer/{group}/lag", a.consumerStatus(true))
	m.HandleFunc("DELETE /v3/kafka/{cluster}/consumer/{group}", a.consumerDelete)
	a.configRoutes()
	if o.Metrics != nil {
		m.Handle("GET /metrics", o.Metrics)
	}
	if o.Dashboard != nil {
		m.Handle("/dashboard/", http.StripPrefix("/dashboard", o.Dashboard))
	}
	return a
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if origin := a.o.Config.General.AccessControlAllowOrigin; origin != "" {
		w.Header().Set("Access-Control-Allow-Origin", origin)
	}
	a.mux.ServeHTTP(w, r)
}

// request is Burrow's "request" object.
type request struct {
	URL  string `json:"url"`
	Host string `json:"host"`
}

func (a *API) req(r *http.Request) request { return request{URL: r.URL.Path, Host: a.host} }

type errorResponse struct {
	Error   bool    `json:"error"`
	Message string  `json:"message"`
	Request request `json:"request"`
}

func (a *API) write(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"error":true,"message":"could not encode JSON","result":{}}`))
		return
	}
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func (a *API) fail(w http.ResponseWriter, r *http.Request, code int, msg string) {
	a.write(w, code, errorResponse{Error: true, Message: msg, Request: a.req(r)})
}

// notFound is Burrow's answer for a path it does not serve.
func (a *API) notFound(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(`{"error":true,"message":"invalid request type","result":{}}`))
}

func (a *API) root(w http.ResponseWriter, r *http.Request) {
	if a.o.Dashboard == nil {
		a.notFound(w, r)
		return
	}
	http.Redirect(w, r, "/dashboard/", http.StatusFound)
}

func (a *API) admin(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("GOOD"))
}

func (a *API) ready(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	if !a.o.Ready() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("STARTING"))
		return
	}
	_, _ = w.Write([]byte("READY"))
}

func (a *API) clusterList(w http.ResponseWriter, r *http.Request) {
	a.write(w, http.StatusOK, struct {
		Error    bool     `json:"error"`
		Message  string   `json:"message"`
		Clusters []string `json:"clusters"`
		Request  request  `json:"request"`
	}{false, "cluster list returned", a.o.Store.Clusters(), a.req(r)})
}

func (a *API) topicList(w http.ResponseWriter, r *http.Request) {
	topics, err := a.o.Store.Topics(r.PathValue("cluster"))
	if err != nil {
		a.fail(w, r, http.StatusNotFound, "cluster not found")
		return
	}
	a.write(w, http.StatusOK, struct {
		Error   bool     `json:"error"`
		Message string   `json:"message"`
		Topics  []string `json:"topics"`
		Request request  `json:"request"`
	}{false, "topic list returned", topics, a.req(r)})
}

func (a *API) topicDetail(w http.ResponseWriter, r *http.Request) {
	offsets, err := a.o.Store.TopicOffsets(r.PathValue("cluster"), r.PathValue("topic"))
	if err != nil {
		a.fail(w, r, http.StatusNotFound, "cluster or topic not found")
		return
	}
	a.write(w, http.StatusOK, struct {
		Error   bool    `json:"error"`
		Message string  `json:"message"`
		Offsets []int64 `json:"offsets"`
		Request request `json:"request"`
	}{false, "topic offsets returned", offsets, a.req(r)})
}

func (a *API) topicConsumers(w http.ResponseWriter, r *http.Request) {
	groups, err := a.o.Store.GroupsOfTopic(r.PathValue("cluster"), r.PathValue("topic"))
	if err != nil {
		a.fail(w, r, http.StatusNotFound, "cluster not found")
		return
	}
	a.write(w, http.StatusOK, struct {
		Error     bool     `json:"error"`
		Message   string   `json:"message"`
		Consumers []string `json:"consumers"`
		Request   request  `json:"request"`
	}{false, "consumers of topic returned", groups, a.req(r)})
}

func (a *API) consumerList(w http.ResponseWriter, r *http.Request) {
	groups, err := a.o.Store.Groups(r.PathValue("cluster"))
	if err != nil {
		a.fail(w, r, http.StatusNotFound, "cluster not found")
		return
	}
	a.write(w, http.StatusOK, struct {
		Error     bool     `json:"error"`
		Message   string   `json:"message"`
		Consumers []string `json:"consumers"`
		Request   request  `json:"request"`
	}{false, "consumer list returned", groups, a.req(r)})
}

// consumerPartition is Burrow's stored-partition shape: the window with
// empty slots as nulls (oldest first), owner, client id and current lag.
type consumerPartition struct {
	Offsets    []*window.Commit `json:"offsets"`
	Owner      string           `json:"owner"`
	ClientID   string           `json:"client_id"`
	CurrentLag uint64           `json:"current-lag"`
}

func (a *API) consumerDetail(w http.ResponseWriter, r *http.Request) {
	snap, err := a.o.Store.Group(r.PathValue("cluster"), r.PathValue("group"))
	if err != nil {
		a.fail(w, r, http.StatusNotFound, "cluster or consumer not found")
		return
	}
	topics := map[string][]consumerPartition{}
	for i := range snap.Partitions {
		p := &snap.Partitions[i]
		cp := consumerPartition{Offsets: []*window.Commit{}, Owner: p.Owner, ClientID: p.ClientID, CurrentLag: p.CurrentLag}
		if p.HasWindow {
			cp.Offsets = make([]*window.Commit, max(p.Intervals, len(p.Commits)))
			pad := len(cp.Offsets) - len(p.Commits)
			for j := range p.Commits {
				cp.Offsets[pad+j] = &p.Commits[j]
			}
		}
		topics[p.Topic] = append(topics[p.Topic], cp)
	}
	a.write(w, http.StatusOK, struct {
		Error   bool                           `json:"error"`
		Message string                         `json:"message"`
		Topics  map[string][]consumerPartition `json:"topics"`
		Request request                        `json:"request"`
	}{false, "consumer detail returned", topics, a.req(r)})
}

// consumerStatus serves /status (showAll false) and /lag (showAll true).
// An unknown group gets Burrow's NOTFOUND status with a 404.
func (a *API) consumerStatus(showAll bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cluster, group := r.PathValue("cluster"), r.PathValue("group")
		code := http.StatusOK
		var status *evaluate.GroupStatus
		snap, err := a.o.Store.Group(cluster, group)
		if err != nil {
			code, status = http.StatusNotFound, evaluate.NotFoundStatus(cluster, group)
		} else {
			status = evaluate.Group(snap, a.o.Now(), a.eval, showAll)
		}
		a.write(w, code, struct {
			Error   bool                  `json:"error"`
			Message string                `json:"message"`
			Status  *evaluate.GroupStatus `json:"status"`
			Request request               `json:"request"`
		}{false, "consumer status returned", status, a.req(r)})
	}
}

// consumerDelete forgets a group. Like Burrow it answers 200 even for an
// unknown cluster or group: the group is gone either way.
func (a *API) consumerDelete(w http.ResponseWriter, r *http.Request) {
	_ = a.o.Store.DeleteGroup(r.PathValue("cluster"), r.PathValue("group"))
	a.write(w, http.StatusOK, errorResponse{Error: false, Message: "consumer group removed", Request: a.req(r)})
}
