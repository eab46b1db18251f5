// SageMaker's multi-model API on /models, in place of multi-model-server's management API
// (which `serve` exposes only in multi-model mode): a load answers once the model has loaded, or
// with the handler's reason when it cannot; 507 before the container runs short of memory;
// only folders in this container load (the server's own API also downloads URLs); every
// answer is JSON, errors as {"error": ..., "status": ...} like the handler's.
import com.amazonaws.ml.mms.http.ConflictStatusException;
import com.amazonaws.ml.mms.util.ConfigManager;
import com.amazonaws.ml.mms.wlm.ModelManager;
import com.amazonaws.ml.mms.wlm.WorkerState;
import com.amazonaws.ml.mms.wlm.WorkerThread;
import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.netty.handler.codec.http.HttpResponseStatus;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import software.amazon.ai.mms.servingsdk.Context;
import software.amazon.ai.mms.servingsdk.ModelServerEndpoint;
import software.amazon.ai.mms.servingsdk.annotations.Endpoint;
import software.amazon.ai.mms.servingsdk.annotations.helpers.EndpointTypes;
import software.amazon.ai.mms.servingsdk.http.Request;
import software.amazon.ai.mms.servingsdk.http.Response;

@Endpoint(urlPattern = "models", endpointType = EndpointTypes.MANAGEMENT,
          description = "SageMaker's multi-model API: load, list, describe and unload models")
public class MultiModels extends ModelServerEndpoint {
    static final String HEADROOM_ENV = "SAGEMAKER_MODEL_MEMORY_HEADROOM_MB";
    static final String FAILURE_DIR_ENV = "MNIST_SERVE_LOAD_FAILURE_DIR";
    static final long MB = 1L << 20;
    static final long DEFAULT_HEADROOM_MB = 512;
    // One load at a time: each memory check then sees what the loads before it took.
    static final Object LOADING = new Object();
    static final Gson GSON = new GsonBuilder().disableHtmlEscaping().create();

    @Override
    public void doGet(Request req, Response rsp, Context ctx) throws IOException {
        String name = modelName(req);
        if (name == null) {
            list(req, rsp);
        } else {
            describe(name, rsp);
        }
    }

    @Override
    public void doPost(Request req, Response rsp, Context ctx) throws IOException {
        if (modelName(req) != null) {
            error(rsp, 405, "POST is for /models; a loaded model answers on /models/NAME/invoke");
            return;
        }
        JsonObject body;
        try (InputStreamReader reader =
                new InputStreamReader(req.getInputStream(), StandardCharsets.UTF_8)) {
            JsonElement parsed = JsonParser.parseReader(reader);
            body = parsed.isJsonObject() ? parsed.getAsJsonObject() : null;
        } catch (RuntimeException e) {
            body = null;
        }
        String name = text(body, "model_name");
        String url = text(body, "url");
        if (name == null || url == null) {
            error(rsp, 400, "the body must be a JSON object with \"model_name\" and \"url\" "
                    + "(the model's folder, /opt/ml/models/NAME/model)");
        } else if (name.isEmpty() || name.contains("/")) {
            error(rsp, 400, "model_name must be a non-empty name without \"/\"");
        } else {
            load(name, url, rsp);
        }
    }

    @Override
    public void doDelete(Request req, Response rsp, Context ctx) throws IOException {
        String name = modelName(req);
        if (name == null) {
            error(rsp, 405, "DELETE takes /models/NAME");
            return;
        }
        HttpResponseStatus status = ModelManager.getInstance().unregisterModel(name);
        if (HttpResponseStatus.NOT_FOUND.equals(status)) {
            error(rsp, 404, "no model named " + name + " is loaded");
        } else if (!HttpResponseStatus.OK.equals(status)) {
            error(rsp, status.code(), "could not unload " + name + ": " + status.reasonPhrase());
        } else {
            json(rsp, 200, Map.of("status", "unloaded " + name));
        }
    }

    @Override
    public void doPut(Request req, Response rsp, Context ctx) throws IOException {
        error(rsp, 405, "models are loaded with POST /models and unloaded with DELETE");
    }

    private void load(String name, String url, Response rsp) throws IOException {
        if (url.contains("://")) {
            error(rsp, 400, "url must be a folder in this container, as SageMaker gives "
                    + "(/opt/ml/models/NAME/model), not " + url);
            return;
        }
        File folder = new File(url);
        if (!folder.isAbsolute() || !folder.isDirectory()) {
            error(rsp, 404, "no model folder at " + url);
            return;
        }
        ModelManager models = ModelManager.getInstance();
        synchronized (LOADING) {
            if (models.getModels().containsKey(name)) {
                error(rsp, 409, "a model named " + name + " is loaded already");
                return;
            }
            long headroom = headroomBytes();
            long free = Memory.available();
            if (free >= 0 && free < headroom) {
                error(rsp, 507, String.format(
                        "not enough memory to load %s: %d MB free, and %d MB is kept free (%s); "
                        + "unload a model first", name, free / MB, headroom / MB, HEADROOM_ENV));
                return;
            }
            Path failure = failureFile(name);
            Files.deleteIfExists(failure);
            ConfigManager config = ConfigManager.getInstance();
            int workers = config.getConfiguredDefaultWorkersPerModel();
            int timeout = config.getDefaultResponseTimeoutSeconds();
            long started = System.nanoTime();
            try {
                models.registerModel(url, name, null, null, 1, 100, timeout, null,
                        config.getPreloadModel());
            } catch (ConflictStatusException e) {
                error(rsp, 409, "a model named " + name + " is loaded already");
                return;
            } catch (Exception e) {
                error(rsp, 400, "cannot load " + url + ": " + e.getMessage());
                return;
            }
            String problem = awaitWorkers(name, models.updateModel(name, workers, workers),
                    failure, Math.max(timeout, 60) * 1000L);
            if (problem != null) {
                models.unregisterModel(name);
                int status = problem.startsWith("507 ") ? 507 : 500;
                error(rsp, status, "cannot load " + name + " from " + url + ": "
                        + problem.substring(problem.indexOf(' ') + 1));
                return;
            }
            Map<String, Object> answer = new LinkedHashMap<>();
            answer.put("status", "loaded " + name);
            answer.put("load_ms", (System.nanoTime() - started) / 1_000_000);
            json(rsp, 200, answer);
        }
    }

    // Null once a worker has the model loaded, else "STATUS reason": the handler's own reason
    // when it left one, else what the server saw.
    private static String awaitWorkers(String name, CompletableFuture<HttpResponseStatus> future,
            Path failure, long timeoutMs) throws IOException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (System.currentTimeMillis() < deadline) {
            if (Files.exists(failure)) {
                String reason = Files.readString(failure, StandardCharsets.UTF_8).strip();
                Files.deleteIfExists(failure);
                return reason.matches("(?s)[0-9]{3} .*") ? reason : "500 " + reason;
            }
            if (running(name) > 0) {
                return null;
            }
            if (future.isDone()) {
                HttpResponseStatus status = future.getNow(HttpResponseStatus.OK);
                if (!HttpResponseStatus.OK.equals(status)) {
                    return status.code() == 507
                            ? "507 its worker ran out of memory"
                            : "500 its worker stopped while loading it (" + status + "); "
                                    + "the log says why";
                }
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return "500 interrupted";
            }
        }
        return "500 it did not load within " + timeoutMs / 1000 + " s";
    }

    private static int running(String name) {
        int count = 0;
        for (WorkerThread worker : ModelManager.getInstance().getWorkers(name)) {
            count += worker.getState() == WorkerState.WORKER_MODEL_LOADED ? 1 : 0;
        }
        return count;
    }

    private static void list(Request req, Response rsp) throws IOException {
        int limit = intParameter(req, "limit", 100);
        int start = intParameter(req, "next_page_token", 0);
        limit = limit <= 0 || limit > 100 ? 100 : limit;
        start = Math.max(start, 0);
        Map<String, com.amazonaws.ml.mms.wlm.Model> loaded = ModelManager.getInstance().getModels();
        List<String> names = new ArrayList<>(loaded.keySet());
        Collections.sort(names);
        List<Map<String, String>> page = new ArrayList<>();
        for (int i = start; i < Math.min(names.size(), start + limit); i++) {
            page.add(Map.of("modelName", names.get(i),
                    "modelUrl", loaded.get(names.get(i)).getModelUrl()));
        }
        Map<String, Object> answer = new LinkedHashMap<>();
        answer.put("models", page);
        if (start + limit < names.size()) {
            answer.put("nextPageToken", String.valueOf(start + limit));
        }
        json(rsp, 200, answer);
    }

    private static void describe(String name, Response rsp) throws IOException {
        com.amazonaws.ml.mms.wlm.Model model = ModelManager.getInstance().getModels().get(name);
        if (model == null) {
            error(rsp, 404, "no model named " + name + " is loaded");
            return;
        }
        Map<String, Object> answer = new LinkedHashMap<>();
        answer.put("modelName", name);
        answer.put("modelUrl", model.getModelUrl());
        answer.put("workers", model.getMinWorkers());
        answer.put("readyWorkers", running(name));
        json(rsp, 200, answer);
    }

    // The model name in /models/NAME, or null for /models.
    private static String modelName(Request req) {
        String path = req.getRequestURI().split("\\?", 2)[0];
        String[] segments = path.split("/");
        if (segments.length < 3 || segments[2].isEmpty()) {
            return null;
        }
        return URLDecoder.decode(segments[2], StandardCharsets.UTF_8);
    }

    private static String text(JsonObject body, String key) {
        if (body == null || !body.has(key) || !body.get(key).isJsonPrimitive()) {
            return null;
        }
        return body.get(key).getAsString();
    }

    private static int intParameter(Request req, String name, int fallback) {
        List<String> values = req.getParameter(name);
        try {
            return values == null || values.isEmpty() ? fallback : Integer.parseInt(values.get(0));
        } catch (NumberFormatException e) {
            return fallback;
        }
    }

    static long headroomBytes() {
        String value = System.getenv(HEADROOM_ENV);
        try {
            return (value == null || value.isBlank() ? DEFAULT_HEADROOM_MB
                    : Long.parseLong(value.strip())) * MB;
        } catch (NumberFormatException e) {
            return DEFAULT_HEADROOM_MB * MB;
        }
    }

    private static Path failureFile(String name) {
        String dir = System.getenv(FAILURE_DIR_ENV);
        return Path.of(dir == null ? System.getProperty("java.io.tmpdir") : dir, name);
    }

    static void json(Response rsp, int status, Object body) throws IOException {
        rsp.setStatus(status);
        rsp.setContentType("application/json");
        rsp.getOutputStream().write(
                (GSON.toJson(body) + "\n").getBytes(StandardCharsets.UTF_8));
    }

    static void error(Response rsp, int status, String message) throws IOException {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("error", message);
        body.put("status", status);
        json(rsp, status, body);
    }
}
