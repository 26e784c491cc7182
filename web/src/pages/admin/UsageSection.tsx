// Usage: messages, tokens and cost per day, per user and per model for a range of days, and the
// model gateway's state (providers, each deployment's circuit breaker) for admins.
import { useState } from "react";
import { BarChart } from "../../components/BarChart";
import { Empty, ErrorMessage, Field, Form, formatTime, Loading } from "../../components/ui";
import { graphql } from "../../gql";
import { useQuery, useSessionUser } from "../../lib/hooks";
import { canAdminister } from "../../lib/roles";
import {
  formatCount,
  formatMeasure,
  formatUsd,
  lastDays,
  type Measure,
  perDay,
  perKey,
  rangeProblem,
  totals,
} from "./usage";
import { useUserNames } from "./userNames";

const Usage = graphql(`
  query Usage($from: Date!, $to: Date!) {
    byDay: usage(from: $from, to: $to, groupBy: [DAY]) {
      day
      userMessages
      assistantMessages
      inputTokens
      outputTokens
      costUsd
    }
    byUser: usage(from: $from, to: $to, groupBy: [USER]) {
      userId
      userMessages
      assistantMessages
      inputTokens
      outputTokens
      costUsd
    }
    byModel: usage(from: $from, to: $to, groupBy: [MODEL]) {
      model
      userMessages
      assistantMessages
      inputTokens
      outputTokens
      costUsd
      averageLatencyMs
    }
  }
`);

const ModelGateway = graphql(`
  query ModelGateway {
    modelGateway {
      providers
      reportedAt
      deployments {
        deployment
        state
        consecutiveFailures
        openSecondsLeft
        lastError
      }
    }
  }
`);

/** `chart` names what the bars add up: messages count both sides (sent and replies). */
const MEASURES: { value: Measure; label: string; chart: string }[] = [
  { value: "messages", label: "Messages", chart: "Messages (sent and replies)" },
  { value: "tokens", label: "Tokens", chart: "Tokens (input and output)" },
  { value: "cost", label: "Cost", chart: "Cost" },
];

export function UsageSection() {
  const user = useSessionUser();
  const initial = lastDays(30);
  const [from, setFrom] = useState(initial.from);
  const [to, setTo] = useState(initial.to);
  const [range, setRange] = useState(initial);
  const [problem, setProblem] = useState<string | null>(null);
  const [measure, setMeasure] = useState<Measure>("messages");
  const usage = useQuery(Usage, range);
  const names = useUserNames();

  const show = () => {
    const why = rangeProblem(from, to);
    setProblem(why);
    if (!why) setRange({ from, to });
  };
  const preset = (days: number) => {
    const r = lastDays(days);
    setFrom(r.from);
    setTo(r.to);
    setProblem(null);
    setRange(r);
  };

  const data = usage.data;
  const format = formatMeasure(measure);
  const measureLabel = MEASURES.find((m) => m.value === measure)?.chart ?? "";
  const sum = data ? totals(data.byDay) : null;

  return (
    <>
      <section aria-labelledby="usage-heading">
        <h2 id="usage-heading">Usage</h2>
        <Form onSubmit={show} label="Usage period">
          <div className="toolbar">
            <Field label="From">
              {(p) => <input {...p} type="date" required value={from} max={to} onChange={(e) => setFrom(e.target.value)} />}
            </Field>
            <Field label="To">
              {(p) => <input {...p} type="date" required value={to} min={from} onChange={(e) => setTo(e.target.value)} />}
            </Field>
            <button type="submit" className="primary">
              Show usage
            </button>
            <div className="presets" role="group" aria-label="Quick periods">
              {[7, 30, 90].map((d) => (
                <button key={d} type="button" onClick={() => preset(d)}>
                  Last {d} days
                </button>
              ))}
            </div>
          </div>
          {problem && (
            <p className="error" role="alert">
              {problem}
            </p>
          )}
        </Form>
        <p className="hint">Days are UTC calendar days, both ends included.</p>

        {usage.error ? (
          <ErrorMessage error={usage.error} />
        ) : !data ? (
          <Loading label="Loading usage…" />
        ) : (
          <div aria-busy={usage.loading}>
            {sum && (
              <dl className="stats" aria-label={`Totals from ${range.from} to ${range.to}`}>
                <Stat label="Messages sent" value={formatCount(sum.userMessages)} />
                <Stat label="Replies" value={formatCount(sum.assistantMessages)} />
                <Stat label="Input tokens" value={formatCount(sum.inputTokens)} />
                <Stat label="Output tokens" value={formatCount(sum.outputTokens)} />
                <Stat label="Cost" value={formatUsd(sum.costUsd)} />
              </dl>
            )}
            <fieldset className="measure">
              <legend>Chart</legend>
              {MEASURES.map((m) => (
                <label key={m.value}>
                  <input
                    type="radio"
                    name="usage-measure"
                    value={m.value}
                    checked={measure === m.value}
                    onChange={() => setMeasure(m.value)}
                  />{" "}
                  {m.label}
                </label>
              ))}
            </fieldset>
            {data.byDay.length === 0 ? (
              <Empty>Nothing was used in this period.</Empty>
            ) : (
              <>
                <BarChart
                  title={`${measureLabel} per day`}
                  bars={perDay(data.byDay, range.from, range.to, measure)}
                  format={format}
                  labelHeader="Day (UTC)"
                  valueHeader={measureLabel}
                />
                <div className="chart-pair">
                  <BarChart
                    title={`${measureLabel} per user`}
                    bars={perKey(data.byUser, (r) => r.userId, measure, names)}
                    format={format}
                    orientation="rows"
                    labelHeader="User"
                    valueHeader={measureLabel}
                  />
                  <BarChart
                    title={`${measureLabel} per model`}
                    bars={perKey(data.byModel, (r) => r.model, measure)}
                    format={format}
                    orientation="rows"
                    labelHeader="Model"
                    valueHeader={measureLabel}
                  />
                </div>
              </>
            )}
          </div>
        )}
      </section>
      {user && canAdminister(user) && <GatewayPanel />}
    </>
  );
}

function Stat({ label, value }: { label: string; value: string }) {
  return (
    <div>
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  );
}

function GatewayPanel() {
  const gateway = useQuery(ModelGateway, {});
  const status = gateway.data?.modelGateway;
  return (
    <section aria-labelledby="gateway-heading">
      <div className="section-header">
        <h2 id="gateway-heading">Model gateway</h2>
        <button type="button" onClick={() => void gateway.reload()} disabled={gateway.loading}>
          Refresh gateway status
        </button>
      </div>
      {gateway.error ? (
        <ErrorMessage error={gateway.error} />
      ) : !gateway.data ? (
        <Loading label="Loading the gateway's state…" />
      ) : !status ? (
        <Empty>Not reported yet: the process that produces replies has not reported its state since it started.</Empty>
      ) : (
        <>
          <p>
            Reported {formatTime(status.reportedAt)}. Providers:{" "}
            {status.providers.length ? status.providers.join(", ") : "none configured"}.
          </p>
          {status.deployments.length === 0 ? (
            <Empty>No deployment has been tried since the replying process started.</Empty>
          ) : (
            <table className="data">
              <caption className="visually-hidden">Circuit breakers by deployment</caption>
              <thead>
                <tr>
                  <th scope="col">Deployment</th>
                  <th scope="col">Circuit breaker</th>
                  <th scope="col">Consecutive failures</th>
                  <th scope="col">Last error</th>
                </tr>
              </thead>
              <tbody>
                {status.deployments.map((d) => (
                  <tr key={d.deployment}>
                    <th scope="row">{d.deployment}</th>
                    <td>
                      <span className={`breaker breaker-${d.state.replace(/[^a-z-]/g, "")}`}>{breakerLabel(d.state)}</span>
                      {d.state !== "closed" && d.openSecondsLeft > 0 && (
                        <> (retried in {Math.ceil(d.openSecondsLeft)} s)</>
                      )}
                    </td>
                    <td>{d.consecutiveFailures}</td>
                    <td>{d.lastError ?? "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </section>
  );
}

function breakerLabel(state: string): string {
  if (state === "closed") return "Closed (healthy)";
  if (state === "open") return "Open (skipped)";
  if (state === "half-open") return "Half-open (testing)";
  return state;
}
