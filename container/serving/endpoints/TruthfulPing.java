// Replaces multi-model-server's /ping, which answers 200 "Unhealthy" while no worker has the
// model loaded. Custom endpoints are looked up before the built-in ones, so this one wins:
// 200 only while at least one worker of every model has loaded it (the handler's initialize
// also ran a test prediction), else 503. In multi-model mode models come and go, so the
// server answering is healthy: 200, with no model or while one loads.
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import software.amazon.ai.mms.servingsdk.Context;
import software.amazon.ai.mms.servingsdk.Model;
import software.amazon.ai.mms.servingsdk.ModelServerEndpoint;
import software.amazon.ai.mms.servingsdk.Worker;
import software.amazon.ai.mms.servingsdk.annotations.Endpoint;
import software.amazon.ai.mms.servingsdk.annotations.helpers.EndpointTypes;
import software.amazon.ai.mms.servingsdk.http.Request;
import software.amazon.ai.mms.servingsdk.http.Response;

@Endpoint(urlPattern = "ping", endpointType = EndpointTypes.INFERENCE,
          description = "200 once a worker has loaded the model, else 503")
public class TruthfulPing extends ModelServerEndpoint {
    @Override
    public void doGet(Request req, Response rsp, Context ctx) throws IOException {
        Map<String, Model> models = ctx.getModels();
        int ready = 0;
        boolean multiModel = "true".equals(System.getenv("SAGEMAKER_MULTI_MODEL"));
        boolean healthy = !models.isEmpty();
        for (Model model : models.values()) {
            int loaded = 0;
            for (Worker worker : model.getModelWorkers()) {
                if (worker.isRunning()) {
                    loaded++;
                }
            }
            ready += loaded;
            healthy &= loaded > 0;
        }
        healthy |= multiModel;
        String body = String.format(
            "{\"status\": \"%s\", \"ready_workers\": %d}\n", healthy ? "Healthy" : "Unhealthy", ready);
        rsp.setStatus(healthy ? 200 : 503);
        rsp.setContentType("application/json");
        rsp.getOutputStream().write(body.getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public void doPost(Request req, Response rsp, Context ctx) throws IOException {
        doGet(req, rsp, ctx);
    }
}
