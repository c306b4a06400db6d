package api

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/config"
)

// IncrementalAlterConfigs: v0-1.
//
// v1 is flexible. Each named setting is set, deleted (back to its
// default), or, for list settings, appended to or subtracted from
// (KIP-339); settings not named keep their values.
func init() { regSync(kmsg.IncrementalAlterConfigs, 0, 1, (*Handlers).incrementalAlterConfigs) }

func (h *Handlers) incrementalAlterConfigs(ctx context.Context, req *kmsg.IncrementalAlterConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		change := func(cur map[string]string) (map[string]string, error) {
			if cur == nil {
				cur = map[string]string{}
			}
			for _, c := range rr.Configs {
				d, known := config.TopicDef(c.Name)
				if !known {
					return nil, fmt.Errorf("%w: unknown topic config %q", config.ErrInvalid, c.Name)
				}
				val := ""
				if c.Value != nil {
					val = *c.Value
				}
				switch c.Op {
				case kmsg.IncrementalAlterConfigOpSet:
					cur[c.Name] = val
				case kmsg.IncrementalAlterConfigOpDelete:
					delete(cur, c.Name)
				case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
					if d.Type != config.TypeList {
						return nil, fmt.Errorf("%w: %s is not a list", kerr.InvalidConfig, c.Name)
					}
					items := listItems(cur, c.Name, d.Default)
					for _, v := range strings.Split(val, ",") {
						v = strings.TrimSpace(v)
						i := slices.Index(items, v)
						if c.Op == kmsg.IncrementalAlterConfigOpAppend && i < 0 {
							items = append(items, v)
						} else if c.Op == kmsg.IncrementalAlterConfigOpSubtract && i >= 0 {
							items = slices.Delete(items, i, i+1)
						}
					}
					cur[c.Name] = strings.Join(items, ",")
				default:
					return nil, fmt.Errorf("%w: operation %d", kerr.InvalidRequest, c.Op)
				}
			}
			return cur, nil
		}
		err := h.alterResource(ctx, rr.ResourceType, rr.ResourceName, req.ValidateOnly, change)
		sr.ErrorCode, sr.ErrorMessage = errCode(err), errMessage(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

func listItems(cur map[string]string, name, def string) []string {
	v, ok := cur[name]
	if !ok {
		v = def
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
