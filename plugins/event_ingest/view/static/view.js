// The ingest view's "re-ingest this day" button.
//
// It triggers the event_ingest DAG for one day through Airflow's REST API
// (POST /api/v2/dags/event_ingest/dagRuns, no logical date, the day as the conf's range), sent
// with the browser's own Airflow session cookie: the run is the user's, with the user's rights,
// and a user who may not trigger the DAG gets Airflow's refusal here. Then it follows the run's
// state until it ends.
(() => {
  "use strict";

  const FINISHED = new Set(["success", "failed"]);
  const POLL_MS = 3000;
  const POLL_LIMIT = 400;

  function problem(response, body) {
    const detail = body && body.detail;
    const text = typeof detail === "string" ? detail : JSON.stringify(detail ?? body ?? "");
    if (response.status === 401 || response.status === 403) {
      return `Airflow refused the run (${response.status} ${text}): your account may not trigger event_ingest.`;
    }
    return `Airflow answered ${response.status}: ${text}`;
  }

  async function readJson(response) {
    try {
      return await response.json();
    } catch {
      return null;
    }
  }

  function show(status, runUrl, run, note) {
    status.replaceChildren();
    status.dataset.runId = run.dag_run_id;
    status.dataset.state = run.state;
    const link = document.createElement("a");
    link.href = runUrl + encodeURIComponent(run.dag_run_id);
    link.target = "_top";
    link.textContent = run.dag_run_id;
    status.append("Run ", link, ` is ${run.state}.`, note ? ` ${note}` : "");
  }

  async function follow(button, status, run) {
    const url = `${button.dataset.triggerUrl}/${encodeURIComponent(run.dag_run_id)}`;
    for (let polls = 0; polls < POLL_LIMIT && !FINISHED.has(run.state); polls += 1) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) {
        return;
      }
      run = await response.json();
      show(status, button.dataset.runUrl, run);
    }
    if (FINISHED.has(run.state)) {
      show(status, button.dataset.runUrl, run, "Reload the page for its counts.");
    }
  }

  async function reingest(button, status) {
    const day = button.dataset.day;
    button.disabled = true;
    status.textContent = `Triggering a run for ${day}…`;
    try {
      const response = await fetch(button.dataset.triggerUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({
          logical_date: null,
          conf: { start_date: day, end_date: day },
          note: `Re-ingest of ${day} from the ingest view`,
        }),
      });
      const body = await readJson(response);
      if (!response.ok) {
        status.textContent = problem(response, body);
        status.dataset.error = String(response.status);
        return;
      }
      show(status, button.dataset.runUrl, body);
      await follow(button, status, body);
    } catch (error) {
      status.textContent = `The run could not be triggered: ${error}`;
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const button of document.querySelectorAll("button.reingest")) {
      const status = button.nextElementSibling;
      button.addEventListener("click", () => reingest(button, status));
    }
  });
})();
