// Send a unit's own export to the bus with HttpClient, and wait until each message has
// reached the national portal. Builds with .NET (dotnet new console; replace Program.cs)
// or with Mono: `mcs -r:System.Net.Http SendToBus.cs && mono SendToBus.exe ...`.
//
//   LIENTHONG_KEY=<unit key> SendToBus.exe <unit> <flow> <file>
//
// The content type follows the file (.json, .xml, .csv); flow "soap" posts a SOAP envelope
// to /soap/<unit>. LIENTHONG_URL defaults to http://127.0.0.1:8080. Prints
// "accepted <ids>" and then "delivered <id> to portal" per message.
// (Written for C# 7 so that Mono's compiler takes it; on .NET 6+ System.Text.Json reads
// the answers more comfortably than the regular expressions below.)
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;

public static class SendToBus
{
    static readonly Regex Id = new Regex("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");

    public static int Main(string[] args)
    {
        if (args.Length != 3)
        {
            Console.Error.WriteLine("usage: SendToBus <unit> <flow> <file>  (LIENTHONG_KEY, LIENTHONG_URL)");
            return 2;
        }
        try
        {
            return Run(args[0], args[1], args[2]).GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return 1;
        }
    }

    static async Task<int> Run(string unit, string flow, string path)
    {
        var url = (Environment.GetEnvironmentVariable("LIENTHONG_URL") ?? "http://127.0.0.1:8080").TrimEnd('/');
        var key = Environment.GetEnvironmentVariable("LIENTHONG_KEY");
        if (string.IsNullOrEmpty(key))
        {
            Console.Error.WriteLine("error: set LIENTHONG_KEY to the unit key");
            return 2;
        }
        string contentType;
        switch (Path.GetExtension(path))
        {
            case ".json": contentType = "application/json"; break;
            case ".xml": contentType = "text/xml"; break;
            case ".csv": contentType = "text/csv"; break;
            default: Console.Error.WriteLine("error: send .json, .xml or .csv"); return 2;
        }
        var body = File.ReadAllBytes(path);
        var endpoint = flow == "soap" ? url + "/soap/" + unit : url + "/api/v1/units/" + unit + "/events/" + flow;
        // No proxy: the bus is on the unit's own network.
        using (var http = new HttpClient(new HttpClientHandler { UseProxy = false }))
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            HttpResponseMessage reply = null;
            string text = null;
            for (var attempt = 0; attempt < 6; attempt++)
            {
                var content = new ByteArrayContent(body);
                content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
                var request = new HttpRequestMessage(HttpMethod.Post, endpoint) { Content = content };
                // A resend with the same key (after a timeout) stores nothing twice.
                request.Headers.Add("Idempotency-Key", IdempotencyKey(body));
                reply = await http.SendAsync(request);
                text = await reply.Content.ReadAsStringAsync();
                var status = (int)reply.StatusCode;
                if (status != 429 && status != 503) break;
                // Busy or over the unit's rate: wait as the bus says, then send again.
                var wait = reply.Headers.RetryAfter != null && reply.Headers.RetryAfter.Delta.HasValue
                    ? reply.Headers.RetryAfter.Delta.Value : TimeSpan.FromSeconds(5);
                Console.Error.WriteLine("bus answered " + status + "; retrying in " + wait.TotalSeconds + " s");
                Thread.Sleep(wait);
            }
            var code = (int)reply.StatusCode;
            if (code != 200 && code != 202)
            {
                // Errors are JSON: {"error": {"code", "message", "field"?}} (SOAP: a Fault).
                Console.Error.WriteLine("error: HTTP " + code + ": " + text);
                return 1;
            }
            var ids = Id.Matches(text).Cast<Match>().Select(m => m.Value).Distinct().OrderBy(s => s).ToList();
            Console.WriteLine("accepted " + string.Join(" ", ids));
            foreach (var id in ids)
            {
                if (!await WaitDelivered(http, url, unit, id, "portal"))
                {
                    Console.Error.WriteLine("error: " + id + " not delivered to the portal within 30 s");
                    return 1;
                }
                Console.WriteLine("delivered " + id + " to portal");
            }
        }
        return 0;
    }

    static string IdempotencyKey(byte[] body)
    {
        using (var sha = SHA256.Create())
        {
            var hash = sha.ComputeHash(body);
            return string.Concat(hash.Take(16).Select(b => b.ToString("x2")));
        }
    }

    // GET /api/v1/units/{unit}/messages/{id}: {"deliveries":[{"delivery":{...,"state":"delivered"},"target":"portal"},...],...}
    static async Task<bool> WaitDelivered(HttpClient http, string url, string unit, string id, string target)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            var json = await http.GetStringAsync(url + "/api/v1/units/" + unit + "/messages/" + id);
            var at = json.IndexOf("\"target\":\"" + target + "\"", StringComparison.Ordinal);
            if (at > 0)
            {
                var state = Regex.Matches(json.Substring(0, at), "\"state\":\"([a-z_]+)\"").Cast<Match>().LastOrDefault();
                if (state != null && state.Groups[1].Value == "delivered") return true;
                if (state != null && state.Groups[1].Value == "dead") throw new Exception(id + " is a dead letter at " + target);
            }
            Thread.Sleep(200);
        }
        return false;
    }
}
