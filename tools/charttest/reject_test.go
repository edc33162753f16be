package charttest

import (
	"strings"
	"testing"
)

// TestBadValuesAreRejected: values.schema.json and the chart's own checks
// stop an install that would not run, or would run unsafely, with a
// message naming the value.
func TestBadValuesAreRejected(t *testing.T) {
	cases := []struct {
		name string
		set  []string
		want string
	}{
		// values.schema.json
		{"replicas not a number", []string{"string:replicas=two"}, "/replicas"},
		{"unknown store driver", []string{"store.driver=mysql"}, "/store/driver"},
		{"unknown slack mode", []string{"config.slack.mode=websocket", "secrets.slackBotToken.name=s", "secrets.slackBotToken.key=k"}, "/config/slack/mode"},
		{"unknown config key", []string{"config.tracing=true"}, "tracing"},
		{"a secret value in values", []string{"secrets.slackBotToken.value=fake-token-value"}, "value"},
		{"unknown secret", []string{"secrets.githubToken.name=gh", "secrets.githubToken.key=token"}, "githubToken"},
		{"bad pull policy", []string{"image.pullPolicy=Sometimes"}, "/image/pullPolicy"},
		{"bad log level", []string{"config.log.level=verbose"}, "/config/log/level"},
		{"bad channel id", []string{"config.channels[0].id=general"}, "/config/channels/0/id"},
		{"bad write namespace", []string{"rbac.writeNamespaces[0]=Prod_NS"}, "/rbac/writeNamespaces/0"},
		{"several replicas on sqlite", []string{"replicas=3", "leaderElection.enabled=true"}, "/store/driver"},
		{"several replicas without leader election", []string{"replicas=2", "store.driver=postgres", "store.postgres.dsnSecret.name=pg", "store.postgres.dsnSecret.key=dsn"}, "/leaderElection/enabled"},
		{"egress destination without peers", []string{"networkPolicy.enabled=true", "networkPolicy.egress.apiServer.cidrs[0]=10.0.0.1/32", "networkPolicy.egress.destinations[0].name=x", "networkPolicy.egress.destinations[0].ports[0]=443"}, "destinations/0"},
		{"a token as an extra env value", []string{"extraEnv[0].name=SLACK_BOT_TOKEN", "extraEnv[0].value=fake-token-value"}, "/extraEnv/0"},
		{"listen set by hand", []string{"config.listen=127.0.0.1:9000"}, "'listen' not allowed"},
		{"a token in the config", []string{"config.slack.bot_token.env=MY_TOKEN", "secrets.slackBotToken.name=s", "secrets.slackBotToken.key=k", "secrets.slackAppToken.name=s", "secrets.slackAppToken.key=a"}, "bot_token"},
		{"unknown router mode", []string{"config.router.mode=magic"}, "/config/router/mode"},
		{"incidents without a destination", []string{"secrets.alertmanagerToken.name=am", "secrets.alertmanagerToken.key=t", "config.incidents.max_body=1000"}, "/config/incidents"},
		// the chart's own checks (templates/_helpers.tpl)
		{"store set by hand", []string{"config.store.driver=postgres"}, "store"},
		{"an LLM without its key", []string{"config.router.mode=llm", "config.router.llm.provider=anthropic", "config.router.llm.model=claude"}, "secrets.llmApiKey"},
		{"incidents without a token", []string{"string:config.incidents.default_channel=slack:C1"}, "secrets.alertmanagerToken"},
		{"incidents basic auth without a password", []string{"string:config.incidents.default_channel=slack:C1", "config.incidents.auth.basic.user=am"}, "secrets.alertmanagerPassword"},
		{"postgres without a DSN secret", []string{"store.driver=postgres"}, "store.postgres.dsnSecret"},
		{"slack without its token", []string{"config.slack.mode=socket"}, "secrets.slackBotToken"},
		{"socket mode without an app token", []string{"config.slack.mode=socket", "secrets.slackBotToken.name=s", "secrets.slackBotToken.key=k"}, "secrets.slackAppToken"},
		{"discord without its token", []string{"string:config.discord.application_id=1"}, "secrets.discordToken"},
		{"half a secret reference", []string{"secrets.lokiToken.name=loki"}, "secrets.lokiToken"},
		{"impersonation without identities", []string{"kubernetes.impersonation.enabled=true"}, "kubernetes.impersonation.identities"},
		{"events API without an ingress host", []string{"config.slack.mode=events", "secrets.slackBotToken.name=s", "secrets.slackBotToken.key=k", "secrets.slackSigningSecret.name=s", "secrets.slackSigningSecret.key=g"}, "ingress.host"},
		{"an ingress without a host", []string{"ingress.enabled=true"}, "ingress.host"},
		{"postgres DSN secret name missing", []string{"store.driver=postgres", "store.postgres.dsnSecret.key=dsn"}, "store.postgres.dsnSecret.name"},
		{"postgres DSN secret key missing", []string{"store.driver=postgres", "store.postgres.dsnSecret.name=pg"}, "store.postgres.dsnSecret.key"},
		{"impersonation writes without writers", []string{"kubernetes.impersonation.enabled=true", "kubernetes.impersonation.identities.slack:U1.user=alice", "rbac.writeNamespaces[0]=prod"}, "kubernetes.impersonation.writeGroups"},
		{"a write group nobody is", []string{"kubernetes.impersonation.enabled=true", "kubernetes.impersonation.identities.slack:U1.user=alice", "rbac.writeNamespaces[0]=prod", "kubernetes.impersonation.writeGroups[0]=admins"}, "kubernetes.impersonation.writeGroups: admins"},
		{"write groups without impersonation", []string{"kubernetes.impersonation.writeGroups[0]=sre"}, "kubernetes.impersonation.enabled=true"},
		{"a namespace Parley may not read", []string{"rbac.readNamespaces[0]=prod", "kubernetes.namespaces[0]=staging"}, "kubernetes.namespaces lists staging"},
		{"a bad job namespace", []string{"rbac.jobNamespaces[0]=Jobs!"}, "/rbac/jobNamespaces/0"},
		{"network policy without the API server", []string{"networkPolicy.enabled=true"}, "networkPolicy.egress.apiServer.cidrs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, []string{"testdata/values-default.yaml"}, tc.set...)
			if err == nil {
				t.Fatalf("%v was accepted", tc.set)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not name %q:\n%v", tc.want, err)
			}
		})
	}
}

// A good value next to each bad one above is accepted, so the rejections
// are about the value and not the way the test sets it.
func TestGoodValuesAreAccepted(t *testing.T) {
	for _, set := range [][]string{
		{"replicas=1"},
		{"config.log.level=debug"},
		{"string:config.channels[0].id=slack:C0123456789"},
		{"rbac.writeNamespaces[0]=prod-ns"},
		{"image.pullPolicy=Always"},
		{"extraEnv[0].name=TZ", "extraEnv[0].value=UTC"},
		{"kubernetes.impersonation.enabled=true", "kubernetes.impersonation.identities.slack:U1.user=alice"},
	} {
		if _, err := render(t, []string{"testdata/values-default.yaml"}, set...); err != nil {
			t.Errorf("%v rejected: %v", set, err)
		}
	}
}
