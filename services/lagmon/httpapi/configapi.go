package httpapi

import (
	"net/http"

	"github.com/runnel-io/runnel/services/lagmon/config"
)

// The /v3/config answers describe lagmon's configuration in Burrow's module
// terms: one storage module and one evaluator module named "default", and
// for every cluster both a cluster module and a consumer module.

func (a *API) configRoutes() {
	m := a.mux
	m.HandleFunc("GET /v3/config", a.configMain)
	m.HandleFunc("GET /v3/config/storage", a.moduleList("storage", func() []string { return []string{"default"} }))
	m.HandleFunc("GET /v3/config/storage/{name}", a.storageDetail)
	m.HandleFunc("GET /v3/config/evaluator", a.moduleList("evaluator", func() []string { return []string{"default"} }))
	m.HandleFunc("GET /v3/config/evaluator/{name}", a.evaluatorDetail)
	m.HandleFunc("GET /v3/config/cluster", a.moduleList("cluster", a.o.Config.ClusterNames))
	m.HandleFunc("GET /v3/config/cluster/{cluster}", a.clusterDetail)
	m.HandleFunc("GET /v3/config/consumer", a.moduleList("consumer", a.o.Config.ClusterNames))
	m.HandleFunc("GET /v3/config/consumer/{name}", a.consumerModuleDetail)
	m.HandleFunc("GET /v3/config/notifier", a.moduleList("notifier", a.o.Config.NotifierNames))
	m.HandleFunc("GET /v3/config/notifier/{name}", a.notifierDetail)
}

type moduleDetail struct {
	Error   bool    `json:"error"`
	Message string  `json:"message"`
	Module  any     `json:"module"`
	Request request `json:"request"`
}

func (a *API) configMain(w http.ResponseWriter, r *http.Request) {
	type general struct {
		PIDFile       string `json:"pidfile"`
		StdoutLogfile string `json:"stdout-logfile"`
		ACAO          string `json:"access-control-allow-origin"`
	}
	type logging struct {
		Filename       string `json:"filename"`
		MaxSize        int    `json:"max-size"`
		MaxBackups     int    `json:"max-backups"`
		MaxAge         int    `json:"max-age"`
		UseLocalTime   bool   `json:"use-local-time"`
		UseCompression bool   `json:"use-compression"`
		Level          string `json:"level"`
	}
	type zookeeper struct {
		Servers  []string `json:"servers"`
		Timeout  int      `json:"timeout"`
		RootPath string   `json:"root-path"`
	}
	type httpServer struct {
		Address string `json:"address"`
		TLS     string `json:"tls"`
		Timeout int    `json:"timeout"`
	}
	a.write(w, http.StatusOK, struct {
		Error      bool                  `json:"error"`
		Message    string                `json:"message"`
		Request    request               `json:"request"`
		General    general               `json:"general"`
		Logging    logging               `json:"logging"`
		Zookeeper  zookeeper             `json:"zookeeper"`
		HTTPServer map[string]httpServer `json:"httpserver"`
	}{
		Message:    "main config returned",
		Request:    a.req(r),
		General:    general{ACAO: a.o.Config.General.AccessControlAllowOrigin},
		Zookeeper:  zookeeper{Servers: []string{}},
		HTTPServer: map[string]httpServer{"default": {Address: a.o.Listen, Timeout: 300}},
	})
}

func (a *API) moduleList(coordinator string, names func() []string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a.write(w, http.StatusOK, struct {
			Error       bool     `json:"error"`
			Message     string   `json:"message"`
			Request     request  `json:"request"`
			Coordinator string   `json:"coordinator"`
			Modules     []string `json:"modules"`
		}{false, "module list returned", a.req(r), coordinator, names()})
	}
}

func (a *API) storageDetail(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("name") != "default" {
		a.fail(w, r, http.StatusNotFound, "storage module not found")
		return
	}
	s := a.o.Config.Storage
	a.write(w, http.StatusOK, moduleDetail{Message: "storage module detail returned", Request: a.req(r), Module: struct {
		ClassName      string `json:"class-name"`
		Intervals      int    `json:"intervals"`
		MinDistance    int64  `json:"min-distance"`
		GroupWhitelist string `json:"group-whitelist"`
		GroupBlacklist string `json:"group-blacklist"`
		ExpireGroup    int64  `json:"expire-group"`
	}{"inmemory", s.Intervals, int64(s.MinDistance.Seconds()), s.AllowText(), s.DenyText(), int64(s.ExpireGroup.Seconds())}})
}

func (a *API) evaluatorDetail(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("name") != "default" {
		a.fail(w, r, http.StatusNotFound, "evaluator module not found")
		return
	}
	e := a.o.Config.Evaluator
	a.write(w, http.StatusOK, moduleDetail{Message: "evaluator module detail returned", Request: a.req(r), Module: struct {
		ClassName       string  `json:"class-name"`
		ExpireCache     int64   `json:"expire-cache"`
		MinimumComplete float32 `json:"minimum-complete"`
		AllowedLag      uint64  `json:"allowed-lag"`
	}{"caching", 0, e.MinimumComplete, e.AllowedLag}})
}

type clientProfile struct {
	Name         string `json:"name"`
	ClientID     string `json:"client-id"`
	KafkaVersion string `json:"kafka-version"`
	TLS          any    `json:"tls"`
	SASL         any    `json:"sasl"`
}

func profile(c *config.Cluster) clientProfile {
	return clientProfile{Name: "default", ClientID: c.ClientID}
}

// clusterDetail serves /v3/kafka/{cluster} and /v3/config/cluster/{cluster}
// (the same answer in Burrow).
func (a *API) clusterDetail(w http.ResponseWriter, r *http.Request) {
	c := a.o.Config.Clusters[r.PathValue("cluster")]
	if c == nil {
		a.fail(w, r, http.StatusNotFound, "cluster module not found")
		return
	}
	servers := c.Servers
	if servers == nil {
		servers = []string{}
	}
	a.write(w, http.StatusOK, moduleDetail{Message: "cluster module detail returned", Request: a.req(r), Module: struct {
		ClassName     string        `json:"class-name"`
		Servers       []string      `json:"servers"`
		ClientProfile clientProfile `json:"client-profile"`
		TopicRefresh  int64         `json:"topic-refresh"`
		OffsetRefresh int64         `json:"offset-refresh"`
		NATSURL       string        `json:"nats-url"`
	}{"kafka", servers, profile(c), int64(c.OffsetRefresh.Seconds()), int64(c.OffsetRefresh.Seconds()), c.NATSURL}})
}

func (a *API) consumerModuleDetail(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	c := a.o.Config.Clusters[name]
	if c == nil {
		a.fail(w, r, http.StatusNotFound, "consumer module not found")
		return
	}
	servers := c.Servers
	if servers == nil {
		servers = []string{}
	}
	a.write(w, http.StatusOK, moduleDetail{Message: "consumer module detail returned", Request: a.req(r), Module: struct {
		ClassName        string        `json:"class-name"`
		Cluster          string        `json:"cluster"`
		Servers          []string      `json:"servers"`
		GroupWhitelist   string        `json:"group-whitelist"`
		ZookeeperPath    string        `json:"zookeeper-path"`
		ZookeeperTimeout int32         `json:"zookeeper-timeout"`
		ClientProfile    clientProfile `json:"client-profile"`
		OffsetsTopic     string        `json:"offsets-topic"`
		StartLatest      bool          `json:"start-latest"`
		OffsetsSource    string        `json:"offsets-source"`
	}{"kafka", name, servers, a.o.Config.Storage.AllowText(), "", 0, profile(c), c.OffsetsTopic, c.StartLatest, c.OffsetsSource}})
}

func (a *API) notifierDetail(w http.ResponseWriter, r *http.Request) {
	n := a.o.Config.Notifiers[r.PathValue("name")]
	if n == nil {
		a.fail(w, r, http.StatusNotFound, "notifier module not found")
		return
	}
	type common struct {
		ClassName      string            `json:"class-name"`
		GroupWhitelist string            `json:"group-whitelist"`
		Interval       int64             `json:"interval"`
		Threshold      int               `json:"threshold"`
		TemplateOpen   string            `json:"template-open"`
		TemplateClose  string            `json:"template-close"`
		Extras         map[string]string `json:"extra"`
		SendClose      bool              `json:"send-close"`
	}
	c := common{n.ClassName, n.AllowText(), int64(n.Interval.Seconds()), int(n.Threshold), n.TemplateOpen, n.TemplateClose, n.Extras, n.SendClose}
	var module any = c
	if n.ClassName == "http" {
		module = struct {
			common
			Timeout     int64  `json:"timeout"`
			Keepalive   int64  `json:"keepalive"`
			URLOpen     string `json:"url-open"`
			URLClose    string `json:"url-close"`
			MethodOpen  string `json:"method-open"`
			MethodClose string `json:"method-close"`
			ExtraCa     string `json:"extra-ca"`
			NoVerify    string `json:"noverify"`
		}{c, int64(n.Timeout.Seconds()), 300, n.URLOpen, n.URLClose, n.MethodOpen, n.MethodClose, "", ""}
	}
	a.write(w, http.StatusOK, moduleDetail{Message: "notifier module detail returned", Request: a.req(r), Module: module})
}
