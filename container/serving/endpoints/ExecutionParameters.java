// GET /execution-parameters: what SageMaker batch transform asks a container before it sends
// any data. Without an answer it sends one request at a time; with this one it keeps every
// worker busy (MaxConcurrentTransforms) and fills requests up to the payload limit. The answer
// is written by `serve` into the server's configuration (execution_parameters), so that this
// class repeats none of its numbers.
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import software.amazon.ai.mms.servingsdk.Context;
import software.amazon.ai.mms.servingsdk.ModelServerEndpoint;
import software.amazon.ai.mms.servingsdk.annotations.Endpoint;
import software.amazon.ai.mms.servingsdk.annotations.helpers.EndpointTypes;
import software.amazon.ai.mms.servingsdk.http.Request;
import software.amazon.ai.mms.servingsdk.http.Response;

@Endpoint(urlPattern = "execution-parameters", endpointType = EndpointTypes.INFERENCE,
          description = "MaxConcurrentTransforms and MaxPayloadInMB for batch transform")
public class ExecutionParameters extends ModelServerEndpoint {
    static final String PROPERTY = "execution_parameters";

    @Override
    public void doGet(Request req, Response rsp, Context ctx) throws IOException {
        String body = ctx.getConfig().getProperty(PROPERTY);
        if (body == null) {
            answer(rsp, 404, "{\"message\": \"no execution parameters in the server's configuration\"}");
        } else {
            answer(rsp, 200, body);
        }
    }

    @Override
    public void doPost(Request req, Response rsp, Context ctx) throws IOException {
        notAllowed(rsp);
    }

    @Override
    public void doPut(Request req, Response rsp, Context ctx) throws IOException {
        notAllowed(rsp);
    }

    @Override
    public void doDelete(Request req, Response rsp, Context ctx) throws IOException {
        notAllowed(rsp);
    }

    private static void notAllowed(Response rsp) throws IOException {
        rsp.setHeader("Allow", "GET");
        answer(rsp, 405, "{\"message\": \"/execution-parameters answers GET only\"}");
    }

    private static void answer(Response rsp, int status, String body) throws IOException {
        rsp.setStatus(status);
        rsp.setContentType("application/json");
        rsp.getOutputStream().write((body + "\n").getBytes(StandardCharsets.UTF_8));
    }
}
