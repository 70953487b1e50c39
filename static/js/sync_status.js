// Sync status: running jobs' rows update every 2 s from the job API (textContent only).
(function () {
  "use strict";
  function text(row, field, value) { var el = row.querySelector('[data-field="' + field + '"]'); if (el) { el.textContent = value; } }
  function poll() {
    var rows = document.querySelectorAll("#jobs tr[data-active]");
    if (!rows.length) { return; }
    rows.forEach(function (row) {
      fetch("/api/sync-jobs/" + row.getAttribute("data-job") + "/", { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (job) {
          if (!job) { return; }
          var badge = row.querySelector('[data-field="status"]');
          badge.textContent = job.status.charAt(0).toUpperCase() + job.status.slice(1); badge.className = "badge badge-" + job.status;
          text(row, "phase", job.phase + (job.is_paused && job.resume_at ? " until " + job.resume_at.substring(11, 16) : ""));
          text(row, "progress", job.records_processed + " records · " + job.pages + " pages");
          text(row, "changes", job.created_count + " new, " + job.updated_count + " changed, " + job.unchanged_count + " same, " + job.deleted_count + " removed");
          text(row, "errors", String(job.error_count) + (job.last_error ? " " + job.last_error.substring(0, 120) : ""));
          if (job.status !== "pending" && job.status !== "running") { row.removeAttribute("data-active"); }
        })
        .catch(function () { /* a failed poll is retried on the next tick */ });
    });
  }
  window.setInterval(poll, 2000);
})();
